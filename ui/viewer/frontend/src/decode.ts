// Turn the `data` bytes argument into typed arrays (zlib via the browser's DecompressionStream,
// so no inflate library is bundled) and coloured heat-map canvases.
import type { ArrayRef, DecodedPanel, HeatOverlay, Pixels, ViewerArgs } from './spec';

async function inflate(bytes: Uint8Array): Promise<ArrayBuffer> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Response(stream).arrayBuffer();
}

async function bufferOf(data: Uint8Array, ref: ArrayRef): Promise<ArrayBuffer> {
  const slice = data.subarray(ref.offset, ref.offset + ref.length);
  if (ref.encoding === 'zlib') {
    return inflate(slice);
  }
  return slice.slice().buffer;   // a copy: aligned for the typed array views
}

function typed(buffer: ArrayBuffer, dtype: ArrayRef['dtype'], start: number, count: number): Pixels {
  switch (dtype) {
    case 'uint8': return new Uint8Array(buffer, start, count);
    case 'int16': return new Int16Array(buffer, start * 2, count);
    case 'uint16': return new Uint16Array(buffer, start * 2, count);
    case 'float32': return new Float32Array(buffer, start * 4, count);
    default: throw new Error(`unsupported dtype ${dtype as string}`);
  }
}

function heatCanvas(values: Uint8Array, rows: number, cols: number, lut: number[]): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const v = values[i] * 3;
    img.data[i * 4] = lut[v];
    img.data[i * 4 + 1] = lut[v + 1];
    img.data[i * 4 + 2] = lut[v + 2];
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

export async function decodePanels(args: ViewerArgs): Promise<DecodedPanel[]> {
  const data = args.data ?? new Uint8Array(0);
  return Promise.all(args.panels.map(async (spec) => {
    const { shape, dtype } = spec.array;
    const [n, rows, cols] = shape;
    const components = (shape.length > 3 ? shape[3] : 1) as 1 | 3;
    const buffer = await bufferOf(data, spec.array);
    const per = rows * cols * components;
    const frames: Pixels[] = [];
    const min: number[] = [];
    const max: number[] = [];
    for (let f = 0; f < n; f++) {
      const px = typed(buffer, dtype, f * per, per);
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < px.length; i++) {
        const v = px[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      frames.push(px);
      min.push(lo);
      max.push(hi);
    }
    const heat = await Promise.all(spec.overlays.map(async (o) => {
      if (o.kind !== 'heat') return null;
      const h = o as HeatOverlay;
      const buf = await bufferOf(data, h.array);
      const [hr, hc] = h.array.shape;
      return heatCanvas(new Uint8Array(buf, 0, hr * hc), hr, hc, h.colormap);
    }));
    return { spec, frames, rows, cols, components, min, max, heat };
  }));
}
