// The Streamlit custom-component protocol (components.v1, API version 1), without React or
// streamlit-component-lib: the iframe says it is ready, receives "streamlit:render" messages
// with the arguments (JSON values; `bytes` arguments arrive as Uint8Array), and may set its
// frame height. The viewer never sets a component value: nothing it does reruns the page.

export interface RenderMessage {
  args: Record<string, unknown>;
  disabled: boolean;
  theme?: Record<string, unknown>;
}

function post(type: string, data: Record<string, unknown> = {}): void {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, '*');
}

export function onRender(callback: (msg: RenderMessage) => void): void {
  window.addEventListener('message', (event: MessageEvent) => {
    const data = event.data as { type?: string } & RenderMessage;
    if (data && data.type === 'streamlit:render') {
      callback(data);
    }
  });
  post('streamlit:componentReady', { apiVersion: 1 });
}

let lastHeight = -1;

export function setFrameHeight(height: number): void {
  const h = Math.ceil(height);
  if (h !== lastHeight) {
    lastHeight = h;
    post('streamlit:setFrameHeight', { height: h });
  }
}
