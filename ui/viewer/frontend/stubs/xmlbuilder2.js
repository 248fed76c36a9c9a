// Stand-in for "xmlbuilder2". vtk.js's XML reader/writer import it; @cornerstonejs/core bundles
// them for loading VTP surface meshes, which the MedScan viewer never does (it shows 2-D pixel
// arrays only). Replacing it drops about 300 kB (xmlbuilder2, its DOM, URL and YAML parsers)
// from the bundle; calling it says why it is missing.
export function create() {
  throw new Error('XML meshes are not supported by the MedScan viewer (xmlbuilder2 is stubbed)');
}
export default { create };
