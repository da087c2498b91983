import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

/** A small line chart of a few series over the last `points` samples (SVG, no library). */
export class RateChart {
  readonly el: HTMLElement;
  readonly #svg: SVGSVGElement;
  readonly #series: { name: string; cls: string; values: number[]; label: HTMLElement }[];
  readonly #points: number;

  constructor(series: { name: string; cls: string }[], points = 60) {
    this.#points = points;
    this.#svg = document.createElementNS(SVG, 'svg');
    this.#svg.setAttribute('viewBox', `0 0 ${points - 1} 100`);
    this.#svg.setAttribute('preserveAspectRatio', 'none');
    this.#series = series.map((s) => ({ ...s, values: [], label: h('b', { class: s.cls }, '0') }));
    const legend = h('div', { class: 'legend' }, ...this.#series.flatMap((s) => [h('span', { class: `dot ${s.cls}` }), `${s.name} `, s.label, ' /s  ']));
    this.el = h('div', { class: 'chart' }, legend, this.#svg);
  }

  /** Adds one sample per series (events per second) and redraws. */
  push(values: number[]): void {
    this.#series.forEach((s, i) => {
      s.values.push(values[i] ?? 0);
      if (s.values.length > this.#points) s.values.shift();
      s.label.textContent = formatRate(values[i] ?? 0);
    });
    const max = Math.max(1, ...this.#series.flatMap((s) => s.values));
    this.#svg.replaceChildren();
    for (const s of this.#series) {
      const line = document.createElementNS(SVG, 'polyline');
      const offset = this.#points - s.values.length;
      line.setAttribute('points', s.values.map((v, i) => `${offset + i},${(100 - (v / max) * 95).toFixed(1)}`).join(' '));
      line.setAttribute('class', s.cls);
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      this.#svg.append(line);
    }
  }
}

export function formatRate(v: number): string {
  return v >= 100 ? String(Math.round(v)) : v.toFixed(1);
}
