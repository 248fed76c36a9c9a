// Entry point of the MedScan viewer component (loaded by build/index.html inside Streamlit's
// component iframe).
import './style.css';
import { decodePanels } from './decode';
import type { ViewerArgs } from './spec';
import { onRender, setFrameHeight } from './streamlit';
import { Viewer } from './viewer';

const root = document.getElementById('root')!;
const viewer = new Viewer(root, (h) => setFrameHeight(h + 2));
new ResizeObserver(() => setFrameHeight(root.offsetHeight + 2)).observe(root);

let pending = Promise.resolve();
onRender(({ args }) => {
  const a = args as unknown as ViewerArgs;
  pending = pending.then(() => viewer.update(a, () => decodePanels(a))).catch((err) => {
    root.dataset.error = String(err?.message ?? err);
    console.error(err);
  });
});
