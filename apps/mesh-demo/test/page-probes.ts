// Scripts the page tests run inside Chromium. They are strings: this package compiles without the DOM types, and
// the browser is the only place they can run.

/** What {@link clippingProbe} reports. */
export interface ClippingReport {
  /** Table cells measured. */
  readonly cells: number;
  /** Ids cut with an ellipsis (each has its whole text in its title). */
  readonly ellipsized: number;
  /** Every clipped thing, described. Empty when nothing is cut off. */
  readonly problems: string[];
}

/**
 * Checks every table of every panel: the table fits its scroll box (nothing to scroll to), every header and cell lies
 * inside its panel, no cell's content overflows the cell, and an id cut with an ellipsis carries its whole text in
 * its title (a shard's short name has its namespace there).
 */
export const clippingProbe = `(() => {
  const problems = [];
  let cells = 0;
  let ellipsized = 0;
  for (const section of document.querySelectorAll("main section")) {
    const name = section.querySelector("h2")?.textContent?.trim() ?? "?";
    const box = section.getBoundingClientRect();
    for (const wrap of section.querySelectorAll(".tw")) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) problems.push(name + ": table " + wrap.scrollWidth + " px wide in " + wrap.clientWidth + " px");
    }
    for (const cell of section.querySelectorAll("th, td")) {
      cells++;
      const r = cell.getBoundingClientRect();
      const text = cell.textContent.trim().slice(0, 40);
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) problems.push(name + ": cell '" + text + "' at " + Math.round(r.left) + "-" + Math.round(r.right) + " outside the panel " + Math.round(box.left) + "-" + Math.round(box.right));
      if (cell.scrollWidth > cell.clientWidth + 1) problems.push(name + ": content of '" + text + "' overflows its cell");
    }
    for (const span of section.querySelectorAll(".id")) {
      if (span.scrollWidth <= span.clientWidth + 1) continue;
      ellipsized++;
      if (!span.title.endsWith(span.textContent)) problems.push(name + ": '" + span.textContent + "' is cut without a title");
    }
  }
  return { cells, ellipsized, problems };
})()`;

/** What {@link imageProbe} reports of a screenshot. */
export interface ImageReport {
  readonly width: number;
  readonly height: number;
  /** Distinct colours (quantised to 4 bits a channel). */
  readonly colours: number;
  /** Share of pixels that differ from the top-left pixel (the page background). */
  readonly inked: number;
}

/** Decodes a PNG (base64) in the page and measures it: size, distinct colours, how much is not background. */
export function imageProbe(pngBase64: string): string {
  return `(async () => {
    const img = new Image();
    img.src = "data:image/png;base64,${pngBase64}";
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, img.width, img.height).data;
    const colours = new Set();
    let inked = 0;
    for (let i = 0; i < data.length; i += 4) {
      colours.add(((data[i] >> 4) << 8) | ((data[i + 1] >> 4) << 4) | (data[i + 2] >> 4));
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) inked++;
    }
    return { width: img.width, height: img.height, colours: colours.size, inked: inked / (data.length / 4) };
  })()`;
}

/** Number of samples each chart has drawn, and how many points each of its lines has. */
export const chartsProbe = `(() => [...document.querySelectorAll("svg.chart")].map((svg) => ({
  id: svg.id,
  points: Number(svg.dataset.points ?? 0),
  lines: [...svg.querySelectorAll("polyline")].map((l) => l.getAttribute("points").trim().split(/\\s+/).filter(Boolean).length),
})))()`;

/** A row of the busiest-keys table as the page shows it. */
export interface KeyRowReport {
  readonly key: string;
  readonly shard: string;
  readonly active: number;
  readonly pending: number;
}

/** The busiest-keys table's rows, top to bottom (the shard as its full namespace, from the title). */
export const keysProbe = `(() => [...document.querySelectorAll("#keys tr[data-key]")].map((tr) => ({
  key: tr.dataset.key,
  shard: tr.querySelectorAll("td")[1].querySelector(".id").title,
  active: Number(tr.querySelector('td[data-field="active"]').textContent),
  pending: Number(tr.querySelector('td[data-field="pending"]').textContent),
})))()`;
