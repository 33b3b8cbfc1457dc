import assert from "node:assert/strict";
import { kernel32 } from "../ffi/kernel32.ts";
import { SecurityAttributes } from "../ffi/security.ts";
import {
  createPipe,
  quoteArgument,
  quoteBatchArgument,
  spawnChild,
} from "../mechanisms/anonymous_pipe.ts";
import { wide } from "../ffi/strings.ts";
import { settled } from "../mechanisms/_pipe_end_settled.ts";
import { repoPath, uniqueName, winTest } from "./_helpers.ts";

const pattern = (size: number, offset = 0) =>
  new Uint8Array(size).map((_, i) => (offset + i) % 253);

Deno.test("quoteArgument() follows the C runtime's rules", () => {
  assert.equal(quoteArgument("plain"), "plain");
  assert.equal(quoteArgument(""), '""');
  assert.equal(quoteArgument("two words"), '"two words"');
  assert.equal(quoteArgument('say "hi"'), '"say \\"hi\\""');
  assert.equal(quoteArgument("C:\\dir with space\\"), '"C:\\dir with space\\\\"');
  assert.equal(quoteArgument("a\\\\b"), "a\\\\b");
});

Deno.test("quoteBatchArgument() quotes cmd.exe's operators and refuses what it cannot quote", () => {
  assert.equal(quoteBatchArgument("plain", "a"), "plain");
  assert.equal(quoteBatchArgument("", "a"), '""');
  assert.equal(quoteBatchArgument("two words", "a"), '"two words"');
  assert.equal(quoteBatchArgument("a&b|c<d>e^f(g)", "a"), '"a&b|c<d>e^f(g)"');
  assert.equal(quoteBatchArgument("C:\\dir\\", "a"), "C:\\dir\\", "no C runtime escapes");
  for (
    const [arg, what] of [['a"b', "a quote"], ["%PATH%", '"%"'], ["!x!", '"!"'], [
      "a\nb",
      "a line break",
    ]]
  ) {
    assert.throws(() => quoteBatchArgument(arg, "args.3"), (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(
        e.message,
        /^Invalid argument "args\.3": an argument to a batch file must not contain /,
      );
      assert.ok(e.message.includes(what), e.message);
      return true;
    });
  }
  // spawnChild refuses such an argument to a batch file before it creates anything
  assert.throws(() => spawnChild("C:\\x\\run.CMD", ["ok", "100%"]), /"args\.1".*"%"/);
  assert.throws(() => spawnChild("run.bat", ['"&calc']), /"args\.0"/);
});

Deno.test("spawnChild() and createPipe() refuse bad arguments before any Win32 call", () => {
  assert.throws(() => spawnChild(""), { name: "RangeError", message: /"program"/ });
  assert.throws(() => spawnChild("x", "y" as unknown as string[]), {
    name: "TypeError",
    message: /"args"/,
  });
  assert.throws(() => spawnChild("x", [], { stdout: "pipe" as "piped" }), {
    name: "TypeError",
    message: /"options\.stdout"/,
  });
  assert.throws(() => spawnChild("x", [], { env: { "A=B": "c" } }), TypeError);
  assert.throws(() => createPipe({ inheritable: "yes" as "read" }), TypeError);
});

winTest(
  "a child through anonymous pipes: 10 MB stdin to stdout round trip, exit code seen",
  async () => {
    await using child = spawnChild(
      Deno.execPath(),
      ["run", "-A", "--quiet", repoPath("tests/fixtures/copy_stdin.ts"), "7"],
      { stdin: "piped", stdout: "piped", stderr: "piped" },
    );
    assert.ok(child.pid > 0);
    const size = 10 * 1024 * 1024;
    const chunk = 256 * 1024;
    const feeding = (async () => {
      for (let at = 0; at < size; at += chunk) {
        await child.stdin!.write(pattern(Math.min(chunk, size - at), at));
      }
      child.stdin!.close(); // the child sees the end of its input
    })();
    let received = 0;
    for await (const part of child.stdout!.readable) {
      for (let i = 0; i < part.length; i++) {
        if (part[i] !== (received + i) % 253) {
          throw new Error(`Byte ${received + i} is ${part[i]}, expected ${(received + i) % 253}`);
        }
      }
      received += part.length;
    }
    await feeding;
    assert.equal(received, size);
    assert.equal(await new Response(child.stderr!.readable).text(), `done ${size}\n`);
    assert.deepEqual(await child.status, { success: false, code: 7 });
  },
);

winTest("a child's exit code 0, a wait with a timeout, and kill()", async () => {
  await using quick = spawnChild(Deno.execPath(), ["eval", "console.log('hé ✓')"], {
    stdout: "piped",
    stderr: "inherit",
  });
  assert.equal(await new Response(quick.stdout!.readable).text(), "hé ✓\n");
  assert.deepEqual(await quick.status, { success: true, code: 0 });

  await using slow = spawnChild(Deno.execPath(), [
    "eval",
    "await new Promise((r) => setTimeout(r, 60000))",
  ], {
    stdout: "null",
    stderr: "null",
  });
  assert.equal(await slow.wait({ timeout: 300 }), null);
  slow.kill(9);
  assert.deepEqual(await slow.wait({ timeout: 30_000 }), { success: false, code: 9 });
});

winTest("a program that does not exist is a clear error", () => {
  assert.throws(() => spawnChild("C:\\no\\such\\program.exe"), (e: Error) => {
    assert.equal(e.name, "Win32Error");
    assert.match(e.message, /Cannot start "C:\\no\\such\\program\.exe": CreateProcessW failed/);
    return true;
  });
});

winTest(
  "createPipe(): bytes written to one end come out of the other; closing ends the stream",
  async () => {
    using pipe = createPipe();
    const writing = (async () => {
      await pipe.writer.write("hello ");
      await pipe.writer.write(new Uint8Array([0xe2, 0x9c, 0x93]));
      pipe.writer.close();
    })();
    assert.equal(await new Response(pipe.reader.readable).text(), "hello ✓");
    await writing;
    await assert.rejects(pipe.writer.write("late"), Deno.errors.BadResource);
  },
);

winTest("the child inherits only its own handles (PROC_THREAD_ATTRIBUTE_HANDLE_LIST)", async () => {
  // An inheritable event that other code of this process made: it must not reach the child. The
  // fixture checks the object itself (by its name, with CompareObjectHandles), not the handle
  // value, which the child may be using for an object of its own.
  const name = `Local\\${uniqueName("inherit")}`;
  using security = new SecurityAttributes({ inheritable: true });
  const event = kernel32().CreateEventW(security.bytes, 1, 0, wide(name))!;
  try {
    const value = String(Deno.UnsafePointer.value(event));
    const fixture = [
      "run",
      "-A",
      "--quiet",
      repoPath("tests/fixtures/handle_check.ts"),
      name,
      value,
    ];
    await using child = spawnChild(Deno.execPath(), fixture, {
      stdout: "piped",
      stderr: "inherit",
    });
    const answer = (await new Response(child.stdout!.readable).text()).trim();
    assert.equal((await child.status).code, 0);
    assert.equal(child.handleListUsed, true, "the system took the handle list");
    assert.equal(answer, "same not-inherited");
    // The control: Deno.Command starts children that inherit every inheritable handle, so there
    // the same fixture must find the event. Without this, a fixture that could never see an
    // inherited handle would pass the check above.
    const control = await new Deno.Command(Deno.execPath(), { args: fixture, stderr: "inherit" })
      .output();
    assert.equal(control.code, 0);
    assert.equal(new TextDecoder().decode(control.stdout).trim(), "same inherited");
  } finally {
    kernel32().CloseHandle(event);
  }
});

winTest("createPipe(): close() with a read pending returns, and the read settles", async () => {
  const pipe = createPipe();
  const reading = pipe.reader.read(new Uint8Array(16));
  await new Promise((r) => setTimeout(r, 50));
  pipe.reader.close(); // returns at once; the read is cancelled
  await assert.rejects(reading, Deno.errors.Interrupted);
  await settled(pipe.reader);
  // The writer now sees the reading end gone.
  await assert.rejects(pipe.writer.write("x"), Deno.errors.BrokenPipe);
  pipe.writer.close();
});

winTest(
  "createPipe(): a read whose I/O is cancelled under it reports the Win32 error",
  async () => {
    using pipe = createPipe();
    const reading = pipe.reader.read(new Uint8Array(16));
    await new Promise((r) => setTimeout(r, 50));
    // Someone else cancels the handle's I/O (the reader is not closing): not the end of the stream.
    assert.ok(kernel32().CancelIoEx(pipe.reader.unsafeHandle, null));
    await assert.rejects(reading, (e: Error) => {
      assert.equal(e.name, "Win32Error");
      assert.match(e.message, /ReadFile failed with ERROR_OPERATION_ABORTED \(995\)/);
      return true;
    });
    // The reader is still usable.
    await pipe.writer.write("ok");
    assert.equal(await pipe.reader.read(new Uint8Array(16)), 2);
  },
);

winTest("a batch file gets cmd.exe's operators as text, not as commands", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}\\show args.cmd`;
    await Deno.writeTextFile(script, "@echo off\r\necho [%1] [%2] [%3]\r\n");
    await using child = spawnChild(script, ["a b&echo INJECTED", "x|y", "plain"], {
      stdout: "piped",
      stderr: "piped",
    });
    const out = (await new Response(child.stdout!.readable).text()).replaceAll("\r", "").trim();
    assert.equal((await child.status).code, 0);
    assert.equal(out, '["a b&echo INJECTED"] ["x|y"] [plain]');
    assert.ok(!/^INJECTED/m.test(out), "nothing ran the injected command");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

winTest(
  "createPipe(): read and write take a timeout and a signal; the ends stay usable",
  async () => {
    using pipe = createPipe({ size: 4096 });
    // A read with nothing to read times out, and the reader still reads afterwards.
    await assert.rejects(
      pipe.reader.read(new Uint8Array(16), { timeout: 50 }),
      Deno.errors.TimedOut,
    );
    const aborter = new AbortController();
    const reading = pipe.reader.read(new Uint8Array(16), { signal: aborter.signal });
    aborter.abort(new Error("stop"));
    await assert.rejects(reading, { message: "stop" });
    await assert.rejects(
      pipe.reader.read(new Uint8Array(16), { signal: AbortSignal.abort(new Error("early")) }),
      { message: "early" },
    );
    await pipe.writer.write("after", { timeout: 5_000 });
    const buffer = new Uint8Array(16);
    const n = await pipe.reader.read(buffer, { timeout: 5_000 });
    assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "after");
    // A write that fills the pipe with nobody reading times out.
    await assert.rejects(
      pipe.writer.write(new Uint8Array(1 << 20), { timeout: 100 }),
      Deno.errors.TimedOut,
    );
    await assert.rejects(pipe.reader.read(buffer, { timeout: -1 }), RangeError);
  },
);

winTest("createPipe(): a synchronous end takes no timeout or signal (NotSupported)", async () => {
  using pipe = createPipe({ inheritable: "both" });
  await assert.rejects(
    pipe.reader.read(new Uint8Array(4), { timeout: 10 }),
    Deno.errors.NotSupported,
  );
  await assert.rejects(
    pipe.writer.write("x", { signal: new AbortController().signal }),
    Deno.errors.NotSupported,
  );
  // Without them, or with no bound, it reads and writes as before.
  await pipe.writer.write("ok", { timeout: Infinity });
  const buffer = new Uint8Array(4);
  assert.equal(await pipe.reader.read(buffer, {}), 2);
});
