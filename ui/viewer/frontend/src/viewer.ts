// The viewer: panels in a grid or two of them in a split (swipe) comparison, each a Cornerstone3D
// StackViewport fed by the "medscan:" image loader. Cornerstone3D tools do window/level, pan,
// zoom and frame scrolling; its synchronizers move zoom/pan and window/level together. Overlays
// (Grad-CAM heat, outlines) and the split divider are plain canvas / CSS on top of the
// viewports, placed with the viewport's own worldToCanvas on every render (see README "Viewer"
// for why they are not Cornerstone actors).
import {
  Enums, RenderingEngine, getRenderingEngine, imageLoader, init as csInit,
  isCornerstoneInitialized, utilities,
} from '@cornerstonejs/core';
import type { Types } from '@cornerstonejs/core';
import {
  Enums as ToolEnums, PanTool, StackScrollTool, SynchronizerManager, ToolGroupManager,
  WindowLevelTool, ZoomTool, addTool, init as toolsInit, synchronizers,
} from '@cornerstonejs/tools';
import { forgetAllExcept, imageIdsFor, pixelSize, registerLoader, registerPanels } from './loader';
import type { DecodedPanel, HeatOverlay, Overlay, ShapeOverlay, ViewerArgs } from './spec';

const ENGINE_ID = 'medscan-engine';
const TOOL_GROUP_ID = 'medscan-tools';
const SYNC_CAMERA = 'medscan-sync-camera';
const SYNC_VOI = 'medscan-sync-voi';
const { MouseBindings, KeyboardBindings } = ToolEnums;

type LeftTool = 'wl' | 'pan' | 'zoom';
const FULLSCREEN_ICON = '<svg width="16" height="16" viewBox="0 0 16 16" fill="none" '
  + 'stroke="currentColor" stroke-width="1.8"><path d="M1 5V1h4M11 1h4v4M15 11v4h-4M5 15H1v-4"/></svg>';
const LEFT_TOOLS: Record<LeftTool, string> = {
  wl: WindowLevelTool.toolName, pan: PanTool.toolName, zoom: ZoomTool.toolName,
};

interface Slot {
  panel: number;
  viewportId: string;
  wrap: HTMLDivElement;
  element: HTMLDivElement;
  overlay: HTMLCanvasElement;
  labels: { title: HTMLDivElement; wl: HTMLDivElement; frame: HTMLDivElement; zoom: HTMLDivElement };
}

interface OverlayState { visible: boolean; opacity: number }

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls = '', text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  return v.toPrecision(3);
}

let initialised = false;

async function initCornerstone(): Promise<void> {
  if (initialised) return;
  initialised = true;
  if (!isCornerstoneInitialized()) csInit();
  toolsInit();
  registerLoader();
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
}

export class Viewer {
  private root: HTMLElement;
  private toolbar = el('div', 'toolbar');
  private area = el('div', 'area');
  private status = el('div', 'status');
  private hint = el('div', 'hint');
  private engine: RenderingEngine | null = null;
  private slots: Slot[] = [];
  private args: ViewerArgs | null = null;
  private panels: DecodedPanel[] = [];
  private dataId = '';
  private mode: 'grid' | 'split' = 'grid';
  private compare: [number, number] = [0, 1];
  private split = 0.5;
  private leftTool: LeftTool = 'wl';
  private link = true;
  private pixels = false;      // true: every panel nearest-neighbour (square pixels)
  private frame = 0;
  private overlayState = new Map<string, OverlayState>();
  private voi = new Map<number, Types.VOIRange>();   // panel → window in force
  private presentation: Types.ViewPresentation | null = null;
  private building: Promise<void> = Promise.resolve();
  private lastJson = '';
  private resizeObserver: ResizeObserver;
  private onHeight: (h: number) => void;

  constructor(root: HTMLElement, onHeight: (h: number) => void) {
    this.root = root;
    this.onHeight = onHeight;
    root.classList.add('viewer');
    root.append(this.toolbar, this.area, this.status, this.hint);
    this.hint.textContent = 'Left-drag: window/level · right-drag or wheel: zoom · middle-drag '
      + 'or Shift+drag: pan · Ctrl+wheel: frames · double-click: reset';
    this.status.textContent = ' ';
    this.resizeObserver = new ResizeObserver(() => this.resized());
    this.resizeObserver.observe(this.area);
    document.addEventListener('fullscreenchange', () => {
      const button = this.toolbar.querySelector('button.fullscreen');
      if (button) {
        button.setAttribute('title', document.fullscreenElement ? 'Exit full screen' : 'Full screen');
        button.setAttribute('aria-label', button.getAttribute('title')!);
      }
      this.layoutHeight();
    });
    root.addEventListener('contextmenu', (e) => e.preventDefault());
    // Leaving the viewer gives the keyboard back to the page (its shortcuts, e.g. the reader
    // study's 1–5), which a click in this iframe took.
    root.addEventListener('mouseleave', () => {
      if (document.hasFocus() && !document.fullscreenElement) {
        try { window.parent.focus(); } catch { /* another origin: leave the focus alone */ }
      }
    });
  }

  /** New arguments from the page. Same pixels: keep the user's zoom, pan and window. */
  async update(args: ViewerArgs, decode: () => Promise<DecodedPanel[]>): Promise<void> {
    const previous = this.args;
    const sameData = args.data_id === this.dataId;
    const json = JSON.stringify({ ...args, data: undefined });
    if (sameData && json === this.lastJson) return;     // a repeated render: nothing to do
    this.lastJson = json;
    this.args = args;
    if (!sameData) {
      const panels = await decode();
      registerPanels(args.data_id, panels);
      this.panels = panels;
      this.dataId = args.data_id;
      this.voi.clear();
      this.presentation = null;
      this.frame = panels[0]?.spec.frame ?? 0;
      this.overlayState.clear();
    } else {
      // a window sent by the page (e.g. a preset picked there) replaces the one in force
      args.panels.forEach((p, i) => {
        const before = previous?.panels[i]?.window;
        if (!before || before[0] !== p.window[0] || before[1] !== p.window[1]) this.voi.delete(i);
        this.panels[i].spec = p;
      });
    }
    const sent = new Map<string, OverlayState>();
    previous?.panels.forEach((p) => p.overlays.forEach((o) => sent.set(o.label, o)));
    for (const p of this.panels) {
      p.spec.overlays.forEach((o) => {
        const before = sent.get(o.label);
        // new overlay, or the page changed its opacity / visibility (e.g. its own slider)
        if (!this.overlayState.has(o.label) || (sameData && before
            && (before.opacity !== o.opacity || before.visible !== o.visible))) {
          this.overlayState.set(o.label, { visible: o.visible, opacity: o.opacity });
        }
      });
    }
    if (!sameData || !previous || previous.mode !== args.mode
        || JSON.stringify(previous.compare) !== JSON.stringify(args.compare)) {
      this.mode = args.mode === 'split' && this.panels.length > 1 ? 'split' : 'grid';
      const c = args.compare ?? [0, Math.min(1, this.panels.length - 1)];
      this.compare = [c[0], c[1]];
    }
    if (!sameData) this.link = args.sync;
    const layout = (a: ViewerArgs | null) => JSON.stringify(
      a && [a.mode, a.compare, a.columns, a.sync, a.panels.map((p) => [p.label, p.smooth])]);
    this.renderToolbar();
    this.layoutHeight();
    if (!sameData || layout(previous) !== layout(args) || !this.slots.length) {
      await this.rebuild();
    } else {
      await this.building;
      this.applyInPlace();      // only windows or overlay settings changed: keep the viewports
    }
  }

  /** The page's windows (where the user has not dragged one) and overlay settings, applied to
   * the viewports as they are. */
  private applyInPlace(): void {
    for (const s of this.slots) {
      const vp = this.engine?.getViewport(s.viewportId) as Types.IStackViewport | undefined;
      if (!vp) continue;
      if (!this.voi.has(s.panel)) {
        vp.setProperties({ voiRange: this.windowRange(s.panel), invert: this.panels[s.panel].spec.invert });
      }
      vp.render();
      this.updateLabels(s);
    }
    this.redrawOverlays();
  }

  // ---- layout ---------------------------------------------------------------------------

  private layoutHeight(): void {
    const full = document.fullscreenElement === this.root;
    const bars = this.toolbar.offsetHeight + this.status.offsetHeight + this.hint.offsetHeight;
    const h = full ? window.innerHeight - bars - 4 : (this.args?.height ?? 500);
    this.area.style.height = `${Math.max(h, 120)}px`;
    this.onHeight(this.root.offsetHeight);
  }

  private resized(): void {
    if (!this.engine || !this.slots.length) return;
    // Keep the zoom relative to "fit" and the pan (a view presentation), not the camera:
    // a bigger area (full screen) then shows the same part of the image, larger.
    const viewports = this.slots.map((s) => this.engine!.getViewport(s.viewportId) as Types.IStackViewport | undefined);
    const kept = viewports.map((vp) => vp?.getViewPresentation());
    this.engine.resize(true, false);
    viewports.forEach((vp, i) => { if (vp && kept[i]) vp.setViewPresentation(kept[i]!); });
    this.engine.render();
    this.placeDivider();
    this.slots.forEach((s) => this.drawOverlays(s));
  }

  private rebuild(): Promise<void> {
    this.building = this.building.then(() => this.build()).catch((err) => {
      this.status.textContent = `Viewer error: ${err?.message ?? err}`;
      console.error(err);
    });
    return this.building;
  }

  private saveState(): void {
    const first = this.slots[0];
    if (!this.engine || !first) return;
    const vp = this.engine.getViewport(first.viewportId) as Types.IStackViewport | undefined;
    if (vp) this.presentation = vp.getViewPresentation();
  }

  private teardown(): void {
    this.saveState();
    SynchronizerManager.destroySynchronizer(SYNC_CAMERA);
    SynchronizerManager.destroySynchronizer(SYNC_VOI);
    ToolGroupManager.destroyToolGroup(TOOL_GROUP_ID);
    if (this.engine) {
      for (const s of this.slots) this.engine.disableElement(s.viewportId);
    }
    this.slots = [];
    this.area.replaceChildren();
  }

  private makeSlot(panel: number, index: number): Slot {
    const wrap = el('div', 'cell');
    const element = el('div', 'vp');
    element.dataset.panel = String(panel);
    const overlay = el('canvas', 'overlay');
    const title = el('div', 'label tl', this.panels[panel].spec.label);
    const wl = el('div', 'label tr wl');
    const frame = el('div', 'label bl frame');
    const zoom = el('div', 'label br zoom');
    wrap.append(element, overlay, title, wl, frame, zoom);
    wrap.dataset.panel = String(panel);
    wrap.dataset.label = this.panels[panel].spec.label;
    return { panel, viewportId: `medscan-vp-${index}`, wrap, element, overlay,
      labels: { title, wl, frame, zoom } };
  }

  private async build(): Promise<void> {
    await initCornerstone();
    this.teardown();
    forgetAllExcept(this.dataId);
    if (!this.panels.length) return;
    this.engine = (getRenderingEngine(ENGINE_ID) as RenderingEngine | undefined)
      ?? new RenderingEngine(ENGINE_ID);
    const shown = this.mode === 'split' ? this.compare : this.panels.map((_, i) => i);
    this.slots = shown.map((p, i) => this.makeSlot(p, i));
    if (this.mode === 'split') {
      const box = el('div', 'split');
      box.append(...this.slots.map((s) => s.wrap));
      this.slots[0].wrap.classList.add('split-left');
      this.slots[1].wrap.classList.add('split-right');
      this.slots[1].labels.title.classList.replace('tl', 'tr2');
      this.slots[1].labels.wl.classList.replace('tr', 'br2');
      box.append(this.makeDivider());
      this.area.append(box);
    } else {
      const grid = el('div', 'grid');
      const cols = Math.max(1, Math.min(this.args!.columns, this.slots.length));
      grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
      grid.style.gridTemplateRows = `repeat(${Math.ceil(this.slots.length / cols)}, minmax(0, 1fr))`;
      grid.append(...this.slots.map((s) => s.wrap));
      this.area.append(grid);
    }
    this.engine.setViewports(this.slots.map((s) => ({
      viewportId: s.viewportId,
      type: Enums.ViewportType.STACK,
      element: s.element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    })));
    const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!;
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) group.addTool(tool.toolName);
    const camera = synchronizers.createZoomPanSynchronizer(SYNC_CAMERA);
    const voi = synchronizers.createVOISynchronizer(SYNC_VOI, { syncInvertState: false, syncColormap: false });
    for (const s of this.slots) {
      const vp = this.engine.getViewport(s.viewportId) as Types.IStackViewport;
      const panel = this.panels[s.panel];
      const frame = Math.min(this.frame, panel.frames.length - 1);
      const ids = imageIdsFor(this.dataId, s.panel);
      // every frame into the cache now (the pixels are already in memory): a scroll never
      // waits for, or is dropped while, a frame loads
      await Promise.all(imageLoader.loadAndCacheImages(ids));
      await vp.setStack(ids, frame);
      vp.setProperties({
        voiRange: this.voi.get(s.panel) ?? this.windowRange(s.panel),
        invert: panel.spec.invert,
        interpolationType: this.interpolation(s.panel),
      });
      group.addViewport(s.viewportId, ENGINE_ID);
      camera.add({ renderingEngineId: ENGINE_ID, viewportId: s.viewportId });
      voi.add({ renderingEngineId: ENGINE_ID, viewportId: s.viewportId });
      this.listen(s, vp);
    }
    const linked = this.link || this.mode === 'split';
    camera.setEnabled(linked);
    voi.setEnabled(linked);
    this.bindTools();
    if (this.presentation) {
      for (const s of this.slots) {
        (this.engine.getViewport(s.viewportId) as Types.IStackViewport).setViewPresentation(this.presentation);
      }
    }
    this.engine.render();
    this.placeDivider();
    this.slots.forEach((s) => { this.updateLabels(s); });
    this.root.dataset.ready = '1';
    this.root.dataset.mode = this.mode;
  }

  private interpolation(panel: number): Enums.InterpolationType {
    return this.pixels || !this.panels[panel].spec.smooth
      ? Enums.InterpolationType.NEAREST : Enums.InterpolationType.LINEAR;
  }

  private windowRange(panel: number): Types.VOIRange {
    const [c, w] = this.panels[panel].spec.window;
    return utilities.windowLevel.toLowHighRange(w, c);
  }

  private bindTools(): void {
    const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID);
    if (!group) return;
    const left = LEFT_TOOLS[this.leftTool];
    const bindings: Record<string, Array<{ mouseButton: number; modifierKey?: number }>> = {
      [WindowLevelTool.toolName]: [],
      [PanTool.toolName]: [{ mouseButton: MouseBindings.Auxiliary },
        { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift }],
      [ZoomTool.toolName]: [{ mouseButton: MouseBindings.Secondary }, { mouseButton: MouseBindings.Wheel }],
      [StackScrollTool.toolName]: [
        { mouseButton: MouseBindings.Wheel, modifierKey: KeyboardBindings.Ctrl },
        { mouseButton: MouseBindings.Wheel, modifierKey: KeyboardBindings.Alt }],
    };
    bindings[left].push({ mouseButton: MouseBindings.Primary });
    for (const [name, b] of Object.entries(bindings)) {
      group.setToolPassive(name);
      group.setToolActive(name, { bindings: b });
    }
  }

  // ---- events, labels, read-out -----------------------------------------------------------

  private listen(s: Slot, vp: Types.IStackViewport): void {
    const { element } = s;
    element.addEventListener(Enums.Events.IMAGE_RENDERED, () => this.drawOverlays(s));
    element.addEventListener(Enums.Events.VOI_MODIFIED, () => {
      const range = vp.getProperties().voiRange;
      if (range) this.voi.set(s.panel, range);
      this.updateLabels(s);
    });
    element.addEventListener(Enums.Events.CAMERA_MODIFIED, () => this.updateLabels(s));
    element.addEventListener(Enums.Events.STACK_NEW_IMAGE, () => {
      const index = vp.getCurrentImageIdIndex();
      if (index !== this.frame) this.setFrame(index, s);
      this.updateLabels(s);
    });
    element.addEventListener('mousemove', (e) => this.readout(s, vp, e));
    element.addEventListener('mouseleave', () => { this.status.textContent = ' '; });
    element.addEventListener('dblclick', () => this.reset());
  }

  private updateLabels(s: Slot): void {
    const vp = this.engine?.getViewport(s.viewportId) as Types.IStackViewport | undefined;
    if (!vp) return;
    const range = vp.getProperties().voiRange;
    if (range) {
      const { windowWidth, windowCenter } = utilities.windowLevel.toWindowLevel(range.lower, range.upper);
      s.labels.wl.textContent = `W ${fmt(windowWidth)} · L ${fmt(windowCenter)}`;
      s.wrap.dataset.window = `${windowCenter},${windowWidth}`;
    }
    const n = this.panels[s.panel].frames.length;
    s.labels.frame.textContent = n > 1 ? `Frame ${vp.getCurrentImageIdIndex() + 1} / ${n}` : '';
    const zoom = vp.getZoom();
    s.labels.zoom.textContent = `×${zoom.toFixed(zoom < 10 ? 2 : 1)}`;
    s.wrap.dataset.zoom = String(zoom);
    s.wrap.dataset.frame = String(vp.getCurrentImageIdIndex());
  }

  private imagePoint(s: Slot, vp: Types.IStackViewport, x: number, y: number): [number, number] {
    const world = vp.canvasToWorld([x, y]);
    const [sx, sy] = pixelSize(this.panels[s.panel]);
    return [world[0] / sx, world[1] / sy];   // continuous pixel coordinates (0,0 = top-left corner)
  }

  private readout(s: Slot, vp: Types.IStackViewport, e: MouseEvent): void {
    const rect = s.element.getBoundingClientRect();
    const [fx, fy] = this.imagePoint(s, vp, e.clientX - rect.left, e.clientY - rect.top);
    const panel = this.panels[s.panel];
    const col = Math.floor(fx);
    const row = Math.floor(fy);
    const label = panel.spec.label;
    if (col < 0 || row < 0 || col >= panel.cols || row >= panel.rows) {
      this.status.textContent = `${label} · outside the image`;
      return;
    }
    const frame = vp.getCurrentImageIdIndex();
    const px = panel.frames[frame];
    const i = (row * panel.cols + col) * panel.components;
    const value = panel.components === 3
      ? `RGB ${px[i]}, ${px[i + 1]}, ${px[i + 2]}`
      : `value ${fmt(px[i])}${panel.spec.unit ? ` ${panel.spec.unit}` : ''}`;
    const sp = panel.spec.spacing;
    const mm = sp ? ` · ${(fx * sp[1]).toFixed(1)} mm, ${(fy * sp[0]).toFixed(1)} mm` : '';
    this.status.textContent = `${label} · x ${col}, y ${row} px${mm} · ${value}`;
    this.status.dataset.value = String(panel.components === 3 ? px[i] : px[i]);
  }

  // ---- overlays ---------------------------------------------------------------------------

  private drawOverlays(s: Slot): void {
    const vp = this.engine?.getViewport(s.viewportId) as Types.IStackViewport | undefined;
    const canvas = s.overlay;
    const w = s.element.clientWidth;
    const h = s.element.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
    }
    const ctx = canvas.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!vp) return;
    ctx.scale(dpr, dpr);
    const panel = this.panels[s.panel];
    const frame = vp.getCurrentImageIdIndex();
    const [sx, sy] = pixelSize(panel);
    const toCanvas = (x: number, y: number): Types.Point2 => vp.worldToCanvas([x * sx, y * sy, 0]);
    const [x0, y0] = toCanvas(0, 0);
    const [x1, y1] = toCanvas(panel.cols, panel.rows);
    panel.spec.overlays.forEach((o: Overlay, k) => {
      const state = this.overlayState.get(o.label);
      if (!state?.visible || (o.frame !== null && o.frame !== frame)) return;
      ctx.globalAlpha = state.opacity;
      if (o.kind === 'heat') {
        const heat = panel.heat[k];
        if (!heat) return;
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(heat, x0, y0, x1 - x0, y1 - y0);
      } else {
        const shape = o as ShapeOverlay;
        ctx.strokeStyle = shape.color;
        ctx.lineWidth = shape.width;
        ctx.lineJoin = 'round';
        for (const path of shape.paths) {
          if (!path.length) continue;
          ctx.beginPath();
          path.forEach(([x, y], j) => {
            const [cx, cy] = toCanvas(x + 0.5, y + 0.5);   // pixel centres
            if (j === 0) ctx.moveTo(cx, cy); else ctx.lineTo(cx, cy);
          });
          if (shape.closed) ctx.closePath();
          ctx.stroke();
        }
      }
    });
    ctx.globalAlpha = 1;
  }

  private redrawOverlays(): void {
    this.slots.forEach((s) => this.drawOverlays(s));
  }

  // ---- split comparison -------------------------------------------------------------------

  private makeDivider(): HTMLDivElement {
    const divider = el('div', 'divider');
    divider.append(el('div', 'handle', '⟷'));
    divider.title = 'Drag to move the split';
    divider.addEventListener('pointerdown', (e) => {
      divider.setPointerCapture(e.pointerId);
      const move = (ev: PointerEvent) => {
        const rect = this.area.getBoundingClientRect();
        this.split = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
        this.placeDivider();
      };
      const up = () => {
        divider.removeEventListener('pointermove', move);
        divider.removeEventListener('pointerup', up);
      };
      divider.addEventListener('pointermove', move);
      divider.addEventListener('pointerup', up);
      e.preventDefault();
    });
    return divider;
  }

  private placeDivider(): void {
    if (this.mode !== 'split' || this.slots.length < 2) return;
    const width = this.area.clientWidth;
    const x = Math.round(this.split * width);
    this.slots[1].wrap.style.clipPath = `inset(0 0 0 ${x}px)`;
    const divider = this.area.querySelector<HTMLDivElement>('.divider');
    if (divider) divider.style.left = `${x}px`;
    this.root.dataset.split = this.split.toFixed(3);
  }

  // ---- controls ---------------------------------------------------------------------------

  private setFrame(index: number, source?: Slot): void {
    this.frame = index;
    for (const s of this.slots) {
      if (s === source) continue;
      const vp = this.engine?.getViewport(s.viewportId) as Types.IStackViewport | undefined;
      const n = this.panels[s.panel].frames.length;
      if (vp && n > 1 && vp.getCurrentImageIdIndex() !== Math.min(index, n - 1)) {
        void vp.setImageIdIndex(Math.min(index, n - 1));
      }
    }
    const slider = this.toolbar.querySelector<HTMLInputElement>('input.frames');
    if (slider) slider.value = String(index);
    const label = this.toolbar.querySelector('.frame-label');
    if (label) label.textContent = `Frame ${index + 1} / ${this.maxFrames()}`;
  }

  private maxFrames(): number {
    return Math.max(1, ...this.panels.map((p) => p.frames.length));
  }

  private reset(): void {
    this.voi.clear();
    for (const s of this.slots) {
      const vp = this.engine?.getViewport(s.viewportId) as Types.IStackViewport | undefined;
      if (!vp) continue;
      vp.resetCamera();
      vp.setProperties({ voiRange: this.windowRange(s.panel) });
      vp.render();
      this.updateLabels(s);
    }
  }

  private toggleFullscreen(): void {
    if (document.fullscreenElement) {
      void document.exitFullscreen();
    } else {
      void this.root.requestFullscreen().catch((err) => {
        this.status.textContent = `Full screen refused by the browser: ${err?.message ?? err}`;
      });
    }
  }

  private group(label: string, ...children: HTMLElement[]): HTMLDivElement {
    const g = el('div', 'group');
    if (label) g.append(el('span', 'glabel', label));
    g.append(...children);
    return g;
  }

  private segmented<T extends string>(options: Array<[T, string, string]>, current: T,
    onPick: (v: T) => void, name: string): HTMLDivElement {
    const box = el('div', 'segmented');
    box.dataset.name = name;
    for (const [value, text, title] of options) {
      const b = el('button', value === current ? 'on' : '', text);
      b.type = 'button';
      b.title = title;
      b.dataset.value = value;
      b.addEventListener('click', () => onPick(value));
      box.append(b);
    }
    return box;
  }

  private panelSelect(index: 0 | 1): HTMLSelectElement {
    const select = el('select', `compare-${index === 0 ? 'left' : 'right'}`);
    this.panels.forEach((p, i) => {
      const o = el('option', '', p.spec.label);
      o.value = String(i);
      select.append(o);
    });
    select.value = String(this.compare[index]);
    select.title = index === 0 ? 'Left of the divider' : 'Right of the divider';
    select.addEventListener('change', () => {
      this.compare[index] = Number(select.value);
      void this.rebuild();
    });
    return select;
  }

  private renderToolbar(): void {
    const bar = this.toolbar;
    bar.replaceChildren();
    const many = this.panels.length > 1;
    if (many) {
      bar.append(this.group('', this.segmented<'grid' | 'split'>([
        ['grid', 'Side by side', 'All panels, moving together'],
        ['split', 'Split', 'Two panels on one view, a divider to drag between them']],
      this.mode, (m) => { this.mode = m; this.renderToolbar(); this.layoutHeight(); void this.rebuild(); }, 'mode')));
      if (this.mode === 'split') {
        bar.append(this.group('', this.panelSelect(0), el('span', 'glabel', 'vs'), this.panelSelect(1)));
      }
    }
    bar.append(this.group('', this.segmented<LeftTool>([
      ['wl', 'Window', 'Left-drag changes window (left/right) and level (up/down)'],
      ['pan', 'Pan', 'Left-drag moves the image'],
      ['zoom', 'Zoom', 'Left-drag up/down zooms']], this.leftTool,
    (t) => { this.leftTool = t; this.renderToolbar(); this.bindTools(); }, 'left')));
    const checks: HTMLElement[] = [];
    if (many) {
      checks.push(this.checkbox('Link', 'Zoom, pan and window move together in every panel',
        this.link, (v) => { this.link = v; void this.rebuild(); }, 'link'));
    }
    checks.push(this.checkbox('Pixels', 'Show every pixel as a square (nearest neighbour) '
      + 'instead of smoothing between pixels when zoomed in', this.pixels, (v) => {
      this.pixels = v;
      for (const s of this.slots) {
        const vp = this.engine?.getViewport(s.viewportId) as Types.IStackViewport | undefined;
        vp?.setProperties({ interpolationType: this.interpolation(s.panel) });
        vp?.render();
      }
    }, 'pixels'));
    bar.append(this.group('', ...checks));
    for (const [label, state] of this.overlayState) {
      const range = el('input', 'opacity');
      range.type = 'range';
      range.min = '0';
      range.max = '1';
      range.step = '0.05';
      range.value = String(state.opacity);
      range.title = `${label}: opacity`;
      range.dataset.overlay = label;
      range.addEventListener('input', () => { state.opacity = Number(range.value); this.redrawOverlays(); });
      bar.append(this.group('', this.checkbox(label, `Show the ${label}`, state.visible, (v) => {
        state.visible = v; this.redrawOverlays();
      }, `overlay-${label}`), range));
    }
    const n = this.maxFrames();
    if (n > 1) {
      const slider = el('input', 'frames');
      slider.type = 'range';
      slider.min = '0';
      slider.max = String(n - 1);
      slider.step = '1';
      slider.value = String(this.frame);
      slider.title = 'Frame (or Ctrl+wheel over the image)';
      slider.addEventListener('input', () => this.setFrame(Number(slider.value)));
      bar.append(this.group('', slider, el('span', 'glabel frame-label', `Frame ${this.frame + 1} / ${n}`)));
    }
    const spacer = el('div', 'spacer');
    const reset = el('button', 'reset', 'Reset');
    reset.type = 'button';
    reset.title = 'Back to the whole image and the page\'s window (or double-click the image)';
    reset.addEventListener('click', () => this.reset());
    const full = el('button', 'fullscreen');
    full.type = 'button';
    full.innerHTML = FULLSCREEN_ICON;
    full.title = document.fullscreenElement ? 'Exit full screen' : 'Full screen';
    full.setAttribute('aria-label', full.title);
    full.addEventListener('click', () => this.toggleFullscreen());
    bar.append(spacer, reset, full);
  }

  private checkbox(text: string, title: string, checked: boolean, onChange: (v: boolean) => void,
    name: string): HTMLLabelElement {
    const label = el('label', 'check');
    label.title = title;
    const box = el('input');
    box.type = 'checkbox';
    box.checked = checked;
    box.dataset.name = name;
    box.addEventListener('change', () => onChange(box.checked));
    label.append(box, document.createTextNode(` ${text}`));
    return label;
  }
}

export type { HeatOverlay };
