// Labels cut short, or lying under an icon button (download, copy, clear): ["what", ...].
() => {
  const shown = (selector) =>
    [...document.querySelectorAll(selector)]
      .map((e) => [e, e.getBoundingClientRect()])
      .filter(([, r]) => r.width > 2 && r.height > 2);
  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const icons = shown("button.icon-button, .icon-button-wrapper button, button[aria-label]").filter(
    ([, r]) => r.width < 60 && r.height < 60,
  );
  const found = [];
  for (const [label, r] of shown("[data-testid='block-label'], [data-testid='block-info'], label > span")) {
    if (label.scrollWidth > label.clientWidth + 1) found.push(`cut: ${label.innerText}`);
    for (const [icon, b] of icons) {
      if (!label.contains(icon) && overlap(r, b)) {
        found.push(`${label.innerText} under ${icon.getAttribute("aria-label")}`);
      }
    }
  }
  return found;
}
