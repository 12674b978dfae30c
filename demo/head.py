"""What the app adds to its page's <head>.

Gradio's chat keeps a gr.BrowserState, which reads `window.localStorage` as the page loads. A
browser denies that storage to an app framed by a page of another site when it blocks third-party
storage (a page opened from file://, private windows, Safari, Brave), the read throws, and the chat
never leaves "Loading...". The script below gives such a page a storage that lasts as long as the
page, so the embedded app works; where the browser allows storage it does nothing.
"""

STORAGE_FALLBACK = """
<script>
(() => {
  try {
    window.localStorage.length;
    return;
  } catch (denied) {}
  const items = new Map();
  const storage = {
    get length() { return items.size; },
    key: (index) => [...items.keys()][index] ?? null,
    getItem: (key) => (items.has(String(key)) ? items.get(String(key)) : null),
    setItem: (key, value) => { items.set(String(key), String(value)); },
    removeItem: (key) => { items.delete(String(key)); },
    clear: () => { items.clear(); },
  };
  Object.defineProperty(window, "localStorage", { value: storage, configurable: true });
})();
</script>
"""
