// WCAG 2 contrast of every visible label, hint and placeholder against what lies behind it:
// [{kind, text, ratio, color}]. Backgrounds with alpha are blended down to the page's own.
() => {
  const rgb = (css) => {
    const parts = css.match(/[\d.]+/g);
    return parts ? parts.map(Number) : null;
  };
  const luminance = ([r, g, b]) => {
    const channel = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const blend = (front, back) => {
    const alpha = front.length > 3 ? front[3] : 1;
    return [0, 1, 2].map((i) => front[i] * alpha + back[i] * (1 - alpha));
  };
  const dark = document.body.classList.contains("dark") || document.documentElement.classList.contains("dark");
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const colour = rgb(getComputedStyle(e).backgroundColor);
      if (colour && (colour.length < 4 || colour[3] > 0)) {
        layers.push(colour);
        if (colour.length < 4 || colour[3] >= 1) break;
      }
    }
    let behind = dark ? [11, 15, 25] : [255, 255, 255];
    for (const colour of layers.reverse()) behind = blend(colour, behind);
    return behind;
  };
  const ratio = (a, b) => {
    const [light, deep] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (light + 0.05) / (deep + 0.05);
  };
  const found = [];
  const check = (element, kind, pseudo) => {
    const style = getComputedStyle(element, pseudo);
    if (!element.getClientRects().length || style.visibility === "hidden") return;
    const behind = background(element);
    const text = pseudo ? element.getAttribute("placeholder") : element.innerText || "";
    const measured = ratio(blend(rgb(style.color), behind), behind);
    found.push({ kind, text: text.slice(0, 40), ratio: Math.round(measured * 100) / 100, color: style.color });
  };
  const each = (selector, kind, pseudo) =>
    document.querySelectorAll(selector).forEach((e) => check(e, kind, pseudo));
  each("[data-testid='block-info'], label > span, .label-wrap span, [data-testid='block-label']", "label");
  each("[data-testid='block-info'] + *, .info, .min_value, .max_value, .camera-status, .live-empty", "hint");
  each("textarea[placeholder], input[placeholder]", "placeholder", "::placeholder");
  return found;
}
