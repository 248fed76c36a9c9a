// A Cornerstone3D image loader for pixels sent by the page: the "medscan:" scheme. An imageId
// "medscan:<data id>:<panel>:<frame>" resolves to an IImage built from the decoded typed array,
// and a metadata provider answers the modules a StackViewport asks for (pixel, plane, series,
// VOI LUT, modality LUT). No DICOM is parsed in the browser and no header reaches it.
import { Enums, cache, imageLoader, metaData, utilities } from '@cornerstonejs/core';
import type { Types } from '@cornerstonejs/core';
import type { DecodedPanel } from './spec';

export const SCHEME = 'medscan';
const registry = new Map<string, DecodedPanel[]>();

export function registerPanels(dataId: string, panels: DecodedPanel[]): void {
  registry.set(dataId, panels);
}

/** Drop the pixels (and Cornerstone's cached images) of every data set but ``keep``: a new
 * scan or result replaces the old one, so a long session does not pile up arrays. */
export function forgetAllExcept(keep: string): void {
  for (const [dataId, panels] of registry) {
    if (dataId === keep) continue;
    panels.forEach((p, i) => p.frames.forEach((_, f) => {
      const imageId = `${SCHEME}:${dataId}:${i}:${f}`;
      try {
        if (cache.getImageLoadObject(imageId)) cache.removeImageLoadObject(imageId, { force: true });
      } catch { /* not cached */ }
    }));
    registry.delete(dataId);
  }
}

export function imageIdsFor(dataId: string, panel: number): string[] {
  const p = registry.get(dataId)![panel];
  return p.frames.map((_, f) => `${SCHEME}:${dataId}:${panel}:${f}`);
}

interface Located { panel: DecodedPanel; frame: number; key: string }

function locate(imageId: string): Located | undefined {
  const [scheme, dataId, panel, frame] = imageId.split(':');
  if (scheme !== SCHEME) return undefined;
  const p = registry.get(dataId)?.[Number(panel)];
  return p ? { panel: p, frame: Number(frame), key: `${dataId}:${panel}` } : undefined;
}

/** World size of one pixel: (x = column spacing, y = row spacing). */
export function pixelSize(panel: DecodedPanel): [number, number] {
  const s = panel.spec.spacing;
  return s ? [s[1], s[0]] : [panel.spec.pixel_size, panel.spec.pixel_size];
}

function bits(px: DecodedPanel['frames'][number]): number {
  return px instanceof Uint8Array ? 8 : px instanceof Float32Array ? 32 : 16;
}

function loadImage(imageId: string): Types.IImageLoadObject {
  const promise = new Promise<Types.IImage>((resolve, reject) => {
    const found = locate(imageId);
    if (!found) {
      reject(new Error(`unknown image ${imageId}`));
      return;
    }
    const { panel, frame } = found;
    const px = panel.frames[frame];
    const [sx, sy] = pixelSize(panel);
    const [centre, width] = panel.spec.window;
    const voxelManager = utilities.VoxelManager.createImageVoxelManager({
      width: panel.cols, height: panel.rows, numberOfComponents: panel.components,
      scalarData: px, id: imageId,
    });
    const image = {
      imageId,
      minPixelValue: panel.min[frame],
      maxPixelValue: panel.max[frame],
      slope: 1,
      intercept: 0,
      windowCenter: centre,
      windowWidth: width,
      voiLUTFunction: Enums.VOILUTFunctionType.LINEAR,
      getPixelData: () => voxelManager.getScalarData(),
      getCanvas: undefined as unknown as () => HTMLCanvasElement,
      rows: panel.rows,
      columns: panel.cols,
      height: panel.rows,
      width: panel.cols,
      color: panel.components === 3,
      rgba: false,
      numberOfComponents: panel.components,
      columnPixelSpacing: sx,
      rowPixelSpacing: sy,
      invert: false,
      photometricInterpretation: panel.components === 3 ? 'RGB' : 'MONOCHROME2',
      sizeInBytes: px.byteLength,
      dataType: px.constructor.name,
      voxelManager,
    } as unknown as Types.IImage;
    resolve(image);
  });
  return { promise };
}

function provider(type: string, imageId: string): unknown {
  const found = typeof imageId === 'string' ? locate(imageId) : undefined;
  if (!found) return undefined;
  const { panel, frame, key } = found;
  const [sx, sy] = pixelSize(panel);
  const b = bits(panel.frames[frame]);
  switch (type) {
    case 'imagePixelModule':
      return {
        samplesPerPixel: panel.components,
        photometricInterpretation: panel.components === 3 ? 'RGB' : 'MONOCHROME2',
        rows: panel.rows, columns: panel.cols,
        bitsAllocated: b, bitsStored: b, highBit: b - 1,
        pixelRepresentation: panel.frames[frame] instanceof Int16Array ? 1 : 0,
      };
    case 'imagePlaneModule':
      return {
        frameOfReferenceUID: `${SCHEME}-${key}`,
        rows: panel.rows, columns: panel.cols,
        imageOrientationPatient: [1, 0, 0, 0, 1, 0],
        rowCosines: [1, 0, 0], columnCosines: [0, 1, 0],
        // the image's top-left corner at the world origin: panels that cover the same area
        // (an input at 1/4 size with 4× the pixel size, and its ×4 outputs) line up exactly
        imagePositionPatient: [sx / 2, sy / 2, 0],
        pixelSpacing: [sy, sx], rowPixelSpacing: sy, columnPixelSpacing: sx,
        sliceThickness: 1, sliceLocation: 0,
      };
    case 'generalSeriesModule':
      return { modality: 'OT', seriesInstanceUID: `${SCHEME}-${key}`, seriesNumber: 1 };
    case 'generalImageModule':
      return { instanceNumber: frame + 1 };
    case 'voiLutModule':
      return { windowCenter: [panel.spec.window[0]], windowWidth: [panel.spec.window[1]] };
    case 'modalityLutModule':
      return { rescaleSlope: 1, rescaleIntercept: 0 };
    default:
      return undefined;
  }
}

let registered = false;

export function registerLoader(): void {
  if (registered) return;
  registered = true;
  imageLoader.registerImageLoader(SCHEME, loadImage as unknown as Types.ImageLoaderFn);
  metaData.addProvider(provider as Parameters<typeof metaData.addProvider>[0], 10000);
}
