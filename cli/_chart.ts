/**
 * `winipc bench --chart <file.svg>`: the bench's figures as an SVG chart, drawn by Apache ECharts'
 * server-side SVG renderer (no browser, no DOM, no canvas).
 *
 * Two panels side by side, each a dot plot on a logarithmic axis (the figures span six
 * orders of magnitude: a shared-memory round trip of a microsecond beside a window message's
 * milliseconds; 1 MiB messages at gigabytes per second beside 64-byte ones at a few megabytes):
 * the median round trip (p50, µs) and the one-way throughput (MB/s), one column per mechanism (a
 * floor, `--floor`, is a column of its own beside its mechanism), one marker per message size.
 * Markers rather than bars: a bar on a log axis has no true base, and figures below 1 would hang
 * from it.
 *
 * @module
 */
import * as echarts from "echarts";

// One marker shape per message size, so that sizes read apart without colour too.
const SYMBOLS = ["circle", "rect", "triangle", "diamond", "pin", "arrow"];

/** The figures of one measurement the chart reads (a line of `winipc bench --json`). */
export interface ChartRow {
  /** The mechanism. */
  mechanism: string;
  /** `"floor"` on a floor's line. */
  impl?: string;
  /** Message size in bytes. */
  size: number;
  /** Median round trip, µs. */
  rtt_us_p50: number;
  /** One-way throughput, MB/s. */
  mb_per_s: number;
}

/** A size in bytes as a label: `64 B`, `4 KiB`, `1 MiB`. */
export function sizeLabel(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/**
 * Draws the chart.
 *
 * @param rows The measurements, in the order the bench ran them.
 * @param options The chart's title and size in pixels.
 * @returns The SVG document.
 * @throws {RangeError} When there is no row, or a figure is not a positive finite number (a log
 * axis cannot show it).
 */
export function benchChartSvg(
  rows: ChartRow[],
  options: { title?: string; width?: number; height?: number } = {},
): string {
  if (rows.length === 0) throw new RangeError("Nothing to chart: no measurement");
  for (const r of rows) {
    for (const key of ["size", "rtt_us_p50", "mb_per_s"] as const) {
      if (!(Number.isFinite(r[key]) && r[key] > 0)) {
        throw new RangeError(
          `Cannot chart ${r.mechanism} ${r.size} B: ${key} is ${r[key]}, not a positive number`,
        );
      }
    }
  }
  const label = (r: ChartRow) => r.impl ? `${r.mechanism} (${r.impl})` : r.mechanism;
  const groups = [...new Set(rows.map(label))];
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  const width = options.width ?? Math.max(900, 160 + groups.length * sizes.length * 36);
  const height = options.height ?? 520;
  const value = (panel: "rtt_us_p50" | "mb_per_s", group: string, size: number) => {
    const row = rows.find((r) => label(r) === group && r.size === size);
    return row ? row[panel] : null; // a size a mechanism was not measured at: no bar
  };
  const panels = [
    { key: "rtt_us_p50" as const, name: "p50 round trip (µs, log scale, lower is better)" },
    { key: "mb_per_s" as const, name: "throughput one way (MB/s, log scale, higher is better)" },
  ];
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width, height });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: "#ffffff",
      title: [
        { text: options.title ?? "winipc bench", left: "center", top: 4 },
        ...panels.map((p, i) => ({
          text: p.name,
          left: `${i * 50 + 25}%`,
          top: 36,
          textAlign: "center",
          textStyle: { fontSize: 13, fontWeight: "normal" },
        })),
      ],
      legend: { bottom: 4, data: sizes.map(sizeLabel) },
      grid: panels.map((_, i) => ({
        left: `${i * 50 + 3}%`,
        width: "44%",
        top: 70,
        bottom: 50,
        containLabel: true,
      })),
      xAxis: panels.map((_, i) => ({
        type: "category",
        gridIndex: i,
        data: groups,
        axisLabel: { rotate: 35, interval: 0 },
        splitLine: { show: true, lineStyle: { type: "dotted" } },
      })),
      yAxis: panels.map((_, i) => ({
        type: "log",
        logBase: 10,
        gridIndex: i,
        splitLine: { show: true },
      })),
      series: panels.flatMap((p, i) =>
        sizes.map((size, k) => ({
          type: "scatter",
          name: sizeLabel(size),
          xAxisIndex: i,
          yAxisIndex: i,
          symbol: SYMBOLS[k % SYMBOLS.length],
          symbolSize: 10,
          data: groups.flatMap((g) => {
            const v = value(p.key, g, size);
            return v === null ? [] : [[g, v]];
          }),
        }))
      ),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
