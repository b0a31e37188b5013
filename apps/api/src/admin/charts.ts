/**
 * Server-rendered SVG charts for the admin pages (issue 18): drawn here as markup, no script and
 * nothing from another origin (the admin CSP forbids both). Every label goes through `esc`; every
 * coordinate is a number this module computed. Each mark carries data attributes (`data-version`,
 * `data-value`…) so a test or an operator's inspector reads what was drawn, not pixels.
 */
import { esc } from './html.ts';

/** One colour per version, in the order the eval lists them (then repeating). */
const PALETTE = ['#2456c9', '#d9822b', '#1f9d55', '#a12a8f', '#6b7582', '#c23b22', '#0f8b8d', '#7a5c00'];
export const versionColour = (i: number): string => PALETTE[i % PALETTE.length]!;

const FONT = 'font-family="system-ui,sans-serif" font-size="11" fill="#46505d"';
const pct = (v: number) => `${Math.round(v * 100)}%`;
const fixed = (n: number) => n.toFixed(1);

export interface VersionBars {
  version: number;
  /** The mean score, in [0, 1]; null: nothing graded yet. */
  meanScore: number | null;
  /** The pass rate and its interval, in [0, 1]. */
  passRate: { rate: number | null; low: number | null; high: number | null };
}

/** The y-axis of a [0, 1] chart: gridlines at each quarter, labelled in percent. */
function unitAxis(left: number, top: number, width: number, height: number): string {
  return [0, 0.25, 0.5, 0.75, 1]
    .map((t) => {
      const y = top + height - t * height;
      return `<line x1="${left}" x2="${left + width}" y1="${fixed(y)}" y2="${fixed(y)}" stroke="#e3e7ec"/><text x="${left - 6}" y="${fixed(y + 4)}" text-anchor="end" ${FONT}>${pct(t)}</text>`;
    })
    .join('');
}

/**
 * Per version, two bars: the mean score and the pass rate, the pass rate with its 95% interval as
 * an error bar. `rect.score` / `rect.pass` / `g.ci`, each with `data-version`.
 */
export function scoreChart(versions: readonly VersionBars[], opts: { id: string; title: string }): string {
  const left = 44;
  const top = 16;
  const height = 180;
  const group = 120;
  const bar = 34;
  const width = Math.max(240, versions.length * group);
  const y = (v: number) => top + height - v * height;
  const marks = versions
    .map((v, i) => {
      const x0 = left + i * group + (group - 2 * bar - 8) / 2;
      const colour = versionColour(i);
      const score = v.meanScore ?? 0;
      const rate = v.passRate.rate ?? 0;
      const scoreBar = `<rect class="bar score" data-version="${esc(v.version)}" data-value="${esc(v.meanScore ?? '')}" x="${fixed(x0)}" y="${fixed(y(score))}" width="${bar}" height="${fixed(score * height)}" fill="${colour}" fill-opacity="0.45"><title>v${esc(v.version)} mean score ${v.meanScore === null ? '—' : esc(v.meanScore.toFixed(3))}</title></rect>`;
      const passX = x0 + bar + 8;
      const passBar = `<rect class="bar pass" data-version="${esc(v.version)}" data-value="${esc(v.passRate.rate ?? '')}" x="${fixed(passX)}" y="${fixed(y(rate))}" width="${bar}" height="${fixed(rate * height)}" fill="${colour}"><title>v${esc(v.version)} pass rate ${v.passRate.rate === null ? '—' : pct(v.passRate.rate)}</title></rect>`;
      const ci =
        v.passRate.low !== null && v.passRate.high !== null
          ? `<g class="ci" data-version="${esc(v.version)}" data-low="${esc(v.passRate.low)}" data-high="${esc(v.passRate.high)}" stroke="#1d2430" stroke-width="1.5"><line x1="${fixed(passX + bar / 2)}" x2="${fixed(passX + bar / 2)}" y1="${fixed(y(v.passRate.low))}" y2="${fixed(y(v.passRate.high))}"/><line x1="${fixed(passX + bar / 2 - 7)}" x2="${fixed(passX + bar / 2 + 7)}" y1="${fixed(y(v.passRate.low))}" y2="${fixed(y(v.passRate.low))}"/><line x1="${fixed(passX + bar / 2 - 7)}" x2="${fixed(passX + bar / 2 + 7)}" y1="${fixed(y(v.passRate.high))}" y2="${fixed(y(v.passRate.high))}"/></g>`
          : '';
      const label = `<text x="${fixed(x0 + bar + 4)}" y="${top + height + 16}" text-anchor="middle" ${FONT}>v${esc(v.version)}</text><text x="${fixed(x0 + bar / 2)}" y="${top + height + 30}" text-anchor="middle" ${FONT} font-size="9">score</text><text x="${fixed(passX + bar / 2)}" y="${top + height + 30}" text-anchor="middle" ${FONT} font-size="9">pass</text>`;
      return scoreBar + passBar + ci + label;
    })
    .join('');
  const w = left + width + 10;
  const h = top + height + 40;
  return `<svg id="${esc(opts.id)}" class="chart" role="img" aria-label="${esc(opts.title)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg"><title>${esc(opts.title)}</title>${unitAxis(left, top, width, height)}${marks}<line x1="${left}" x2="${left + width}" y1="${top + height}" y2="${top + height}" stroke="#8a939f"/></svg>`;
}

/**
 * The score distribution: ten buckets of [0, 1] on the x-axis, per bucket one bar per version side
 * by side, heights in results. `rect.hist` with `data-version`, `data-bucket`, `data-count`.
 */
export function histogramChart(versions: readonly { version: number; histogram: readonly number[] }[], opts: { id: string; title: string }): string {
  const left = 44;
  const top = 16;
  const height = 160;
  const buckets = 10;
  const slot = Math.max(36, versions.length * 14 + 10);
  const width = buckets * slot;
  const max = Math.max(1, ...versions.flatMap((v) => v.histogram));
  const barWidth = (slot - 10) / Math.max(1, versions.length);
  const ticks = [0, Math.ceil(max / 2), max]
    .filter((t, i, all) => all.indexOf(t) === i)
    .map((t) => {
      const y = top + height - (t / max) * height;
      return `<line x1="${left}" x2="${left + width}" y1="${fixed(y)}" y2="${fixed(y)}" stroke="#e3e7ec"/><text x="${left - 6}" y="${fixed(y + 4)}" text-anchor="end" ${FONT}>${t}</text>`;
    })
    .join('');
  const bars = versions
    .flatMap((v, vi) =>
      v.histogram.map((count, b) => {
        const h = (count / max) * height;
        const x = left + b * slot + 5 + vi * barWidth;
        return `<rect class="hist" data-version="${esc(v.version)}" data-bucket="${b}" data-count="${esc(count)}" x="${fixed(x)}" y="${fixed(top + height - h)}" width="${fixed(barWidth - 1)}" height="${fixed(h)}" fill="${versionColour(vi)}"><title>v${esc(v.version)}: ${esc(count)} scored ${(b / 10).toFixed(1)}–${b === 9 ? '1.0' : ((b + 1) / 10).toFixed(1)}</title></rect>`;
      }),
    )
    .join('');
  const labels = Array.from(
    { length: buckets + 1 },
    (_, b) => `<text x="${left + b * slot}" y="${top + height + 14}" text-anchor="middle" ${FONT}>${(b / 10).toFixed(1)}</text>`,
  ).join('');
  const legend = versions
    .map(
      (v, vi) =>
        `<rect x="${left + vi * 60}" y="${top + height + 24}" width="10" height="10" fill="${versionColour(vi)}"/><text x="${left + vi * 60 + 14}" y="${top + height + 33}" ${FONT}>v${esc(v.version)}</text>`,
    )
    .join('');
  const w = left + width + 14;
  const h = top + height + 42;
  return `<svg id="${esc(opts.id)}" class="chart" role="img" aria-label="${esc(opts.title)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg"><title>${esc(opts.title)}</title>${ticks}${bars}<line x1="${left}" x2="${left + width}" y1="${top + height}" y2="${top + height}" stroke="#8a939f"/>${labels}${legend}</svg>`;
}

export interface SharePoint {
  at: Date;
  /** The candidate's share of traffic after the event, in percent. */
  share: number;
  label: string;
}

/**
 * A share in percent over time as a step line (a share holds until the next event), one
 * `circle.point` per event (`data-share`, `data-at`), drawn up to `until` (a little past it).
 */
export function shareChart(points: readonly SharePoint[], until: Date, opts: { id: string; title: string }): string {
  const left = 44;
  const top = 14;
  const height = 160;
  const width = 640;
  const w = left + width + 20;
  const h = top + height + 34;
  const axis = [0, 25, 50, 75, 100]
    .map((t) => {
      const y = top + height - (t / 100) * height;
      return `<line x1="${left}" x2="${left + width}" y1="${fixed(y)}" y2="${fixed(y)}" stroke="#e3e7ec"/><text x="${left - 6}" y="${fixed(y + 4)}" text-anchor="end" ${FONT}>${t}%</text>`;
    })
    .join('');
  if (points.length === 0) {
    return `<svg id="${esc(opts.id)}" class="chart" role="img" aria-label="${esc(opts.title)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg"><title>${esc(opts.title)}</title>${axis}</svg>`;
  }
  const start = points[0]!.at.getTime();
  const last = Math.max(until.getTime(), points.at(-1)!.at.getTime(), start + 1000);
  // A little room after the last event, so a final change (a rollback to 0%) is seen as a step.
  const end = last + (last - start) * 0.06;
  const x = (d: Date | number) => left + (((typeof d === 'number' ? d : d.getTime()) - start) / (end - start)) * width;
  const y = (share: number) => top + height - (Math.max(0, Math.min(100, share)) / 100) * height;
  let path = `M${fixed(x(points[0]!.at))} ${fixed(y(points[0]!.share))}`;
  for (const p of points.slice(1)) path += ` H${fixed(x(p.at))} V${fixed(y(p.share))}`;
  path += ` H${fixed(x(end))}`;
  const dots = points
    .map(
      (p) =>
        `<circle class="point" data-share="${esc(p.share)}" data-at="${esc(p.at.toISOString())}" cx="${fixed(x(p.at))}" cy="${fixed(y(p.share))}" r="4" fill="#2456c9" stroke="#fff" stroke-width="1.5"><title>${esc(p.label)}: ${esc(p.share)}% at ${esc(p.at.toISOString())}</title></circle>`,
    )
    .join('');
  const timeLabel = (t: number) => new Date(t).toISOString().slice(11, 19);
  const xLabels = `<text x="${left}" y="${top + height + 16}" ${FONT}>${timeLabel(start)}</text><text x="${fixed(x(last))}" y="${top + height + 16}" text-anchor="end" ${FONT}>${timeLabel(last)} UTC</text>`;
  return `<svg id="${esc(opts.id)}" class="chart" role="img" aria-label="${esc(opts.title)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg"><title>${esc(opts.title)}</title>${axis}<path class="share" d="${path}" fill="none" stroke="#2456c9" stroke-width="2"/>${dots}<line x1="${left}" x2="${left + width}" y1="${top + height}" y2="${top + height}" stroke="#8a939f"/>${xLabels}</svg>`;
}
