// The bench chart (cli/_chart.ts), from rows shaped as `winipc bench --json` lines, on any
// platform: it is drawn, it shows every mechanism and size, and it refuses what a log axis cannot
// show. No figure of the drawing is asserted.
import assert from "node:assert/strict";
import { benchChartSvg, type ChartRow, sizeLabel } from "../cli/_chart.ts";

function rows(): ChartRow[] {
  const out: ChartRow[] = [];
  for (const mechanism of ["shm", "pipe", "copydata"]) {
    for (const size of [64, 4096, 65536, 1 << 20]) {
      out.push({ mechanism, size, rtt_us_p50: 1 + size / 100, mb_per_s: size / 1000 });
      if (mechanism === "pipe") {
        out.push({
          mechanism,
          impl: "floor",
          size,
          rtt_us_p50: 2 + size / 90,
          mb_per_s: size / 900,
        });
      }
    }
  }
  return out;
}

/** The texts of an SVG's <text> elements. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

Deno.test("sizeLabel() names sizes in B, KiB and MiB", () => {
  assert.equal(sizeLabel(64), "64 B");
  assert.equal(sizeLabel(4096), "4 KiB");
  assert.equal(sizeLabel(1 << 20), "1 MiB");
  assert.equal(sizeLabel(1000), "1000 B");
  assert.equal(sizeLabel(1536), "1536 B");
});

Deno.test("benchChartSvg() draws both panels with every mechanism, floor and size", () => {
  const svg = benchChartSvg(rows(), { title: "test run" });
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  const shown = texts(svg);
  for (const t of ["test run", "shm", "pipe", "pipe (floor)", "copydata"]) {
    assert.ok(shown.includes(t), `shows ${t}: ${shown.join("|")}`);
  }
  for (const t of ["64 B", "4 KiB", "64 KiB", "1 MiB"]) assert.ok(shown.includes(t), t);
  assert.ok(shown.some((t) => t.startsWith("p50 round trip (µs, log scale")));
  assert.ok(shown.some((t) => t.startsWith("throughput one way (MB/s, log scale")));
  // a log axis: its tick labels are powers of ten
  assert.ok(shown.includes("1,000") || shown.includes("1000"), shown.join("|"));
  // one bar (a path) per row and panel: fewer rows, fewer bars
  const bars = (s: string) => (s.match(/<path /g) ?? []).length;
  const fewer = benchChartSvg(rows().filter((r) => r.mechanism !== "copydata"));
  assert.ok(bars(svg) > bars(fewer), "each row is drawn");
});

Deno.test("benchChartSvg() draws mechanisms measured at different sizes", () => {
  const one = benchChartSvg([
    { mechanism: "shm", size: 64, rtt_us_p50: 1.5, mb_per_s: 40 },
    { mechanism: "socket", size: 64, rtt_us_p50: 300, mb_per_s: 0.2 },
    { mechanism: "socket", size: 4096, rtt_us_p50: 320, mb_per_s: 12 },
  ]);
  assert.ok(texts(one).includes("socket"));
  assert.ok(texts(one).includes("4 KiB"));
});

Deno.test("benchChartSvg() refuses no rows and figures a log axis cannot show", () => {
  assert.throws(() => benchChartSvg([]), /no measurement/);
  for (const bad of [0, -1, NaN, Infinity]) {
    assert.throws(
      () => benchChartSvg([{ mechanism: "shm", size: 64, rtt_us_p50: bad, mb_per_s: 1 }]),
      RangeError,
    );
    assert.throws(
      () => benchChartSvg([{ mechanism: "shm", size: 64, rtt_us_p50: 1, mb_per_s: bad }]),
      /shm 64 B: mb_per_s/,
    );
  }
});
