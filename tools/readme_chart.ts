/**
 * Draws docs/bench.svg from the README's benchmark table (the first table under "## Benchmark"),
 * with the same chart as `winipc bench --chart`, so the README shows the figures it lists.
 *
 * Usage: `deno run -A tools/readme_chart.ts` after updating the table. The SVG is generated, so
 * `deno fmt` leaves it alone (`fmt.exclude` in deno.json).
 *
 * @module
 */
import { benchChartSvg, type ChartRow } from "../cli/_chart.ts";
import { repoRoot } from "./wine.ts";

const readme = await Deno.readTextFile(`${repoRoot}/README.md`);
const section = readme.slice(readme.indexOf("## Benchmark"));
const measured = section.match(/Measured on (\d{4}-\d{2}-\d{2})/)?.[1] ?? "";
const rows: ChartRow[] = [];
for (
  const line of section.split("\n").slice(
    section.split("\n").findIndex((l) => l.startsWith("| mechanism")) + 2,
  )
) {
  if (!line.startsWith("|")) break;
  const cells = line.split("|").slice(1, -1).map((c) => c.trim());
  const [label, size, p50, , , mbs] = cells;
  const floor = label.endsWith(" (floor)");
  const number = (s: string) => Number(s.replaceAll(",", ""));
  rows.push({
    mechanism: floor ? label.slice(0, -" (floor)".length) : label,
    ...(floor ? { impl: "floor" } : {}),
    size: number(size),
    rtt_us_p50: number(p50),
    mb_per_s: number(mbs),
  });
}
if (rows.length === 0) throw new Error("No benchmark table found in README.md");
const svg = benchChartSvg(rows, {
  title: `winipc bench --floor, ${measured}: the README's table (deno.exe under Wine, 2 cores)`,
});
await Deno.mkdir(`${repoRoot}/docs`, { recursive: true });
await Deno.writeTextFile(`${repoRoot}/docs/bench.svg`, svg);
console.log(`docs/bench.svg: ${rows.length} measurements`);
