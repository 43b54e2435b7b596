// The audit of tests/render/test_browser_email.py, run in the page: every problem a reader would
// meet. Contrast of each visible text against the nearest opaque background up the tree, font
// sizes, the height of standalone links (nothing but links in their block), sideways scroll.
(limits) => {
  const rgba = (value) => {
    const parts = value.match(/[\d.]+/g).map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const ratio = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const ground = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour.a >= 1) return colour;
    }
    return null;
  };
  const visible = (element) => element.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
    && element.getClientRects().length > 0;
  const isBlock = (element) => !getComputedStyle(element).display.startsWith('inline');
  const said = (text) => text.replace(/\s+/g, ' ').trim();

  const contrast = [], small = [], seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const element = walker.currentNode.parentElement;
    if (!said(walker.currentNode.textContent) || seen.has(element) || !visible(element)) continue;
    seen.add(element);
    const style = getComputedStyle(element);
    const text = said(element.textContent).slice(0, 50);
    const behind = ground(element);
    const colour = rgba(style.color);
    const r = behind ? ratio(colour, behind) : 0;
    if (r < limits.contrast) contrast.push(`${r.toFixed(2)}:1 ${style.color} on ${behind ? JSON.stringify(behind) : 'nothing'}: ${text}`);
    const size = parseFloat(style.fontSize);
    if (size < limits.font) small.push(`${size}px: ${text}`);
  }
  const short = [];
  for (const link of document.querySelectorAll('a')) {
    if (!visible(link)) continue;
    const box = link.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let block = link;
    while (block.parentElement && !isBlock(block)) block = block.parentElement;
    // Standalone: nothing but links in its block ("Manage · Unsubscribe" counts), no sentence.
    let words = block.textContent;
    for (const other of block.querySelectorAll('a')) words = words.replace(other.textContent, '');
    const standalone = !/[\p{L}\p{N}]/u.test(words);
    if (standalone && box.height < limits.tap) short.push(`${box.height.toFixed(1)}px: ${said(link.textContent) || link.href}`);
  }
  return {
    contrast, small, short,
    scroll: document.documentElement.scrollWidth - window.innerWidth,
  };
}
