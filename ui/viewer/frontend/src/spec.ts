// What the Python wrapper (ui/viewer/__init__.py) sends: JSON arguments describing panels and
// one `data` bytes argument holding every pixel array, zlib-compressed, at the offsets given.

export type DType = 'uint8' | 'int16' | 'uint16' | 'float32';

export interface ArrayRef {
  offset: number;        // into the `data` bytes argument
  length: number;        // bytes at that offset
  encoding: 'zlib' | 'raw';
  dtype: DType;
  shape: number[];       // frames × rows × columns [× 3]
}

export interface HeatOverlay {
  kind: 'heat';
  label: string;
  array: ArrayRef;       // uint8 0..255, rows × columns (any size: stretched over the image)
  colormap: number[];    // 256 × RGB, flattened
  opacity: number;
  visible: boolean;
  frame: number | null;  // the frame it belongs to (null: every frame)
}

export interface ShapeOverlay {
  kind: 'contours';
  label: string;
  paths: number[][][];   // polygons of [x, y] pixel-centre coordinates
  closed: boolean;
  color: string;
  width: number;         // screen pixels
  opacity: number;
  visible: boolean;
  frame: number | null;
}

export type Overlay = HeatOverlay | ShapeOverlay;

export interface PanelSpec {
  label: string;
  array: ArrayRef;
  spacing: [number, number] | null;   // (row, column) mm
  pixel_size: number;                 // display size of a pixel when spacing is null
  window: [number, number];           // (centre, width)
  invert: boolean;                    // MONOCHROME1: high values dark
  unit: string | null;
  frame: number;
  smooth: boolean;
  overlays: Overlay[];
}

export interface ViewerArgs {
  version: number;
  data_id: string;
  panels: PanelSpec[];
  sync: boolean;
  compare: [number, number] | null;
  mode: 'grid' | 'split';
  height: number;
  columns: number;
  data?: Uint8Array;
}

export type Pixels = Uint8Array | Int16Array | Uint16Array | Float32Array;

export interface DecodedPanel {
  spec: PanelSpec;
  frames: Pixels[];      // one typed array per frame (rows × columns × components)
  rows: number;
  cols: number;
  components: 1 | 3;
  min: number[];
  max: number[];
  heat: (HTMLCanvasElement | null)[];   // per overlay: the coloured heat map, else null
}
