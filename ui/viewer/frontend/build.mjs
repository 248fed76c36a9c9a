// Build the MedScan viewer component: `npm ci && npm run build` here, or scripts/build_viewer.sh
// from the repository root. Bundles src/ with esbuild into ../build/ (committed, so the app
// never needs Node) and writes ../build/build-info.json with the hash of every input, which
// tests/test_viewer.py recomputes to prove the committed bundle was built from these sources.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outArg = process.argv.indexOf('--outdir');
const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.resolve(here, '..', 'build');

/** The inputs of the build, as paths relative to this folder (sorted, POSIX separators). */
function sources() {
  const walk = (dir) => fs.readdirSync(path.join(here, dir), { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? walk(`${dir}/${d.name}`) : [`${dir}/${d.name}`]));
  return [...walk('src'), ...walk('stubs'), 'index.html', 'build.mjs', 'package.json',
    'package-lock.json', 'tsconfig.json'].sort();
}

/** sha256 over "path\0sha256(content)\n" for each input: the same recipe as the Python test. */
function sourceHash(files) {
  const h = createHash('sha256');
  for (const f of files) {
    const digest = createHash('sha256').update(fs.readFileSync(path.join(here, f))).digest('hex');
    h.update(`${f}\0${digest}\n`);
  }
  return h.digest('hex');
}

// vtk.js's XML mesh reader/writer (pulled in by @cornerstonejs/core for surface meshes, which
// the viewer never loads) import xmlbuilder2 and, through it, Node's "events" and "url".
const stubs = {
  name: 'medscan-stubs',
  setup(build) {
    build.onResolve({ filter: /^xmlbuilder2$/ }, () => ({ path: path.join(here, 'stubs', 'xmlbuilder2.js') }));
  },
};

fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(out)) {      // only what a previous build wrote
  if (/^(index\.html|viewer\..+|build-info\.json)$/.test(f)) fs.rmSync(path.join(out, f));
}
const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { viewer: 'src/index.ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: out,
  plugins: [stubs],
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
});
// index.html names each file with a version query (the first 16 hex digits of its sha256), so
// a server may let browsers keep them for good (serve.py does: ui/asset_cache.py); a rebuild
// changes the names.
const digest = (f) => createHash('sha256').update(fs.readFileSync(path.join(out, f))).digest('hex').slice(0, 16);
fs.writeFileSync(path.join(out, 'index.html'), fs.readFileSync(path.join(here, 'index.html'), 'utf8')
  .replace('%JS_VERSION%', digest('viewer.js')).replace('%CSS_VERSION%', digest('viewer.css')));

const lock = JSON.parse(fs.readFileSync(path.join(here, 'package-lock.json'), 'utf8'));
const version = (name) => lock.packages[`node_modules/${name}`]?.version;
const files = sources();
const built = Object.fromEntries(fs.readdirSync(out).sort().map((f) => [f, {
  bytes: fs.statSync(path.join(out, f)).size,
  sha256: createHash('sha256').update(fs.readFileSync(path.join(out, f))).digest('hex'),
}]));
const info = {
  source_sha256: sourceHash(files),
  sources: files,
  files: built,
  versions: Object.fromEntries(['@cornerstonejs/core', '@cornerstonejs/tools', '@kitware/vtk.js',
    'esbuild'].map((n) => [n, version(n)])),
  rebuild: 'scripts/build_viewer.sh (npm ci && npm run build in ui/viewer/frontend)',
};
fs.writeFileSync(path.join(out, 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);
const kb = (n) => `${(n / 1024).toFixed(0)} kB`;
for (const [f, { bytes }] of Object.entries(built)) console.log(`${f.padEnd(28)} ${kb(bytes)}`);
void result;
