import assert from "node:assert/strict";
import { benchChartSvg } from "../cli/_chart.ts";
import { runCli, winTest } from "./_helpers.ts";

winTest(
  "winipc bench --json --floor measures round trips between two processes, and each floor",
  async () => {
    const result = await runCli([
      "bench",
      "--mechanism",
      "shm,pipe,deno-pipe,mailslot,copydata,socket,deno-tcp",
      "--size",
      "64",
      "--seconds",
      "1",
      "--floor",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
    // each kernel mechanism is followed by its floor; Deno's own references have none
    assert.deepEqual(lines.map((l) => l.impl ? `${l.mechanism} ${l.impl}` : l.mechanism), [
      "shm",
      "shm floor",
      "pipe",
      "pipe floor",
      "deno-pipe",
      "mailslot",
      "mailslot floor",
      "copydata",
      "copydata floor",
      "socket",
      "socket floor",
      "deno-tcp",
    ]);
    const figures = ["size", "rtt_us_p50", "rtt_us_p99", "msgs_per_s", "mb_per_s"];
    for (const line of lines) {
      assert.deepEqual(
        Object.keys(line),
        line.impl ? ["mechanism", "impl", ...figures] : ["mechanism", ...figures],
      );
      assert.equal(line.size, 64);
      // full precision: nothing is rounded to 0, however slow the machine
      assert.ok(line.rtt_us_p50 > 0 && line.rtt_us_p50 <= line.rtt_us_p99, JSON.stringify(line));
      assert.ok(line.msgs_per_s > 0 && line.mb_per_s > 0, JSON.stringify(line));
    }
  },
);

winTest("winipc bench prints a table, and rejects an unknown mechanism with exit 2", async () => {
  const table = await runCli([
    "bench",
    "--mechanism",
    "shm",
    "--size",
    "4096",
    "--seconds",
    "1",
    "--floor",
  ]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(
    table.stdout,
    /mechanism.*size.*p50 µs.*p99 µs.*round trips\/s.*MB\/s one way.*p50 \/ floor/,
  );
  assert.match(table.stdout, /│ shm +│ 4096 +│( [\d.,]+ +│){4} [\d.,]+× +│/);
  assert.match(table.stdout, /│ shm \(floor\) +│ 4096 +│( [\d.,]+ +│){4} +│/);
  const bad = await runCli(["bench", "--mechanism", "carrier-pigeon"]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /^error: Invalid --mechanism: must be among shm, pipe, deno-pipe, mailslot, copydata, socket, deno-tcp/,
  );
  const badSize = await runCli(["bench", "--size", "0"]);
  assert.equal(badSize.code, 2);
  assert.match(badSize.stderr, /^error: option '--size <bytes>' argument '0' is invalid/);
});

winTest(
  "winipc bench --mechanism pubsub-1,pubsub-4 --json: publish/subscribe lines with the same keys",
  async () => {
    const result = await runCli([
      "bench",
      "--mechanism",
      "pubsub-1,pubsub-4",
      "--size",
      "64",
      "--seconds",
      "1",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.mechanism), ["pubsub-1", "pubsub-4"]);
    for (const line of lines) {
      assert.deepEqual(Object.keys(line), [
        "mechanism",
        "size",
        "rtt_us_p50",
        "rtt_us_p99",
        "msgs_per_s",
        "mb_per_s",
      ]);
      assert.ok(line.rtt_us_p50 > 0 && line.rtt_us_p50 <= line.rtt_us_p99, JSON.stringify(line));
      assert.ok(line.msgs_per_s > 0 && line.mb_per_s > 0, JSON.stringify(line));
    }
  },
);

winTest(
  "winipc bench --chart writes an SVG chart; the same chart is drawn from the run's JSON lines",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "winipc-chart-" });
    try {
      const file = `${dir}/bench.svg`;
      const result = await runCli([
        "bench",
        "--mechanism",
        "shm,mailslot",
        "--size",
        "64",
        "--seconds",
        "1",
        "--floor",
        "--json",
        "--chart",
        file,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /chart written to .*bench\.svg/);
      const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines.length, 4, "--chart adds no line to stdout");
      const svg = await Deno.readTextFile(file);
      const fromJson = benchChartSvg(lines);
      for (const drawn of [svg, fromJson]) {
        assert.match(drawn, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
        assert.ok(drawn.trimEnd().endsWith("</svg>"));
        for (const text of ["shm", "shm (floor)", "mailslot", "mailslot (floor)", "64 B"]) {
          assert.ok(drawn.includes(`>${text}<`), `the chart shows ${text}`);
        }
        assert.match(drawn, /p50 round trip \(µs, log scale/);
        assert.match(drawn, /throughput one way \(MB\/s, log scale/);
      }
      const bad = await runCli(["bench", "--mechanism", "shm", "--chart", " "]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^error: Invalid --chart: must be a file name/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
