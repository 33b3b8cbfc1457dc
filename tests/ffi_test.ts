import assert from "node:assert/strict";
import {
  checkBool,
  checkHandle,
  errorName,
  fromWide,
  INVALID_HANDLE_VALUE,
  isInvalidHandle,
  kernel32,
  lazyLibrary,
  OVERLAPPED,
  OwnedHandle,
  readWide,
  SECURITY_ATTRIBUTES,
  SecurityAttributes,
  splitDword,
  StructLayout,
  SYSTEM_INFO,
  UnsupportedPlatformError,
  wide,
  Win32Error,
} from "../ffi/mod.ts";
import { onWindows, uniqueName, winTest } from "./_helpers.ts";

const SAMPLE = "héllo ✓ 𝄞"; // BMP non-ASCII plus an astral character (a surrogate pair)

Deno.test("wide() writes each UTF-16 code unit and a NUL", () => {
  const units = wide(SAMPLE);
  assert.equal(units.length, SAMPLE.length + 1);
  assert.deepEqual(
    [...units],
    [104, 0xe9, 108, 108, 111, 32, 0x2713, 32, 0xd834, 0xdd1e, 0],
  );
});

Deno.test("fromWide() reads up to the first NUL and round-trips non-ASCII", () => {
  assert.equal(fromWide(wide(SAMPLE)), SAMPLE);
  assert.equal(fromWide(new Uint16Array([65, 66, 0, 67])), "AB");
  assert.equal(fromWide(new Uint16Array([65, 66, 67]), 2), "AB");
  const long = "x".repeat(100_000) + "✓";
  assert.equal(fromWide(wide(long)), long);
});

Deno.test("readWide() reads a NUL-terminated string from memory", () => {
  const units = wide(SAMPLE);
  assert.equal(readWide(Deno.UnsafePointer.of(units)), SAMPLE);
  assert.equal(readWide(null), "");
  assert.equal(readWide(Deno.UnsafePointer.of(units), 2), "hé");
});

Deno.test("struct layouts match the sizes Win32 documents for x64", () => {
  assert.equal(SECURITY_ATTRIBUTES.size, 24);
  assert.equal(SECURITY_ATTRIBUTES.offsetOf("lpSecurityDescriptor"), 8);
  assert.equal(SECURITY_ATTRIBUTES.offsetOf("bInheritHandle"), 16);
  assert.equal(OVERLAPPED.size, 32);
  assert.equal(OVERLAPPED.offsetOf("Offset"), 16);
  assert.equal(OVERLAPPED.offsetOf("hEvent"), 24);
  assert.equal(SYSTEM_INFO.size, 48);
  assert.equal(SYSTEM_INFO.offsetOf("dwAllocationGranularity"), 40);
  // COPYDATASTRUCT { ULONG_PTR dwData; DWORD cbData; PVOID lpData; } is 24 bytes.
  const COPYDATASTRUCT = new StructLayout({ dwData: "usize", cbData: "u32", lpData: "pointer" });
  assert.equal(COPYDATASTRUCT.size, 24);
  assert.equal(COPYDATASTRUCT.offsetOf("lpData"), 16);
  // Nested structs and arrays: { u8 a; struct { u16 b; u64 c; } s; u16 name[3]; } = 1+7, 16, 6+2
  const Inner = new StructLayout({ b: "u16", c: "u64" });
  const Outer = new StructLayout({ a: "u8", s: Inner, name: ["u16", 3] } as const);
  assert.equal(Inner.size, 16);
  assert.equal(Outer.offsetOf("s"), 8);
  assert.equal(Outer.offsetOf("name"), 24);
  assert.equal(Outer.size, 32);
});

Deno.test("StructLayout writes and reads every field kind", () => {
  const Inner = new StructLayout({ b: "u16", c: "u64" } as const);
  const Layout = new StructLayout(
    {
      a: "i8",
      f: "f64",
      s: Inner,
      arr: ["i32", 2],
      p: "pointer",
    } as const,
  );
  const bytes = Layout.alloc({
    a: -5,
    f: 1.5,
    s: { b: 65535, c: 1n << 40n },
    arr: [-1, 7],
    p: Deno.UnsafePointer.create(0x1234n),
  });
  const back = Layout.read(bytes);
  assert.equal(back.a, -5);
  assert.equal(back.f, 1.5);
  assert.deepEqual(back.s, { b: 65535, c: 1n << 40n });
  assert.deepEqual(back.arr, [-1, 7]);
  assert.equal(Deno.UnsafePointer.value(back.p), 0x1234n);
  assert.throws(() => Layout.alloc({ arr: [1, 2, 3] }), RangeError);
});

Deno.test("splitDword() splits 64-bit sizes into high and low DWORDs", () => {
  assert.deepEqual(splitDword(0), [0, 0]);
  assert.deepEqual(splitDword(0xffff_ffff), [0, 0xffff_ffff]);
  assert.deepEqual(splitDword(2 ** 32), [1, 0]);
  assert.deepEqual(splitDword(5n * 1024n ** 3n), [1, 1024 ** 3]);
  assert.deepEqual(splitDword(0xffff_ffff_ffff_ffffn), [0xffff_ffff, 0xffff_ffff]);
  assert.throws(() => splitDword(-1), RangeError);
  assert.throws(() => splitDword(1n << 64n), RangeError);
});

Deno.test("errorName() names codes, known or not", () => {
  assert.equal(errorName(2), "ERROR_FILE_NOT_FOUND");
  assert.equal(errorName(231), "ERROR_PIPE_BUSY");
  assert.equal(errorName(10061), "WSAECONNREFUSED");
  assert.equal(errorName(99999), "ERROR_99999");
});

Deno.test("Win32Error carries function, code, name and text in its message", () => {
  const e = new Win32Error("CreateFileW", 231, {
    context: 'Cannot connect to pipe "\\\\.\\pipe\\x"',
    systemMessage: "All pipe instances are busy",
  });
  assert.equal(e.functionName, "CreateFileW");
  assert.equal(e.code, 231);
  assert.equal(e.codeName, "ERROR_PIPE_BUSY");
  assert.equal(
    e.message,
    'Cannot connect to pipe "\\\\.\\pipe\\x": CreateFileW failed with ERROR_PIPE_BUSY (231): All pipe instances are busy',
  );
  assert.ok(e instanceof Error);
});

Deno.test({
  name: "calling a mechanism off Windows throws one clear error",
  ignore: onWindows,
  fn() {
    const lib = lazyLibrary(
      "kernel32.dll",
      {
        GetLastError: { parameters: [], result: "u32" },
      } as const,
    );
    assert.throws(() => lib(), UnsupportedPlatformError);
    assert.throws(
      () => kernel32(),
      /winipc needs Windows \(or the Windows build of Deno under Wine\): this is Deno for linux|darwin/,
    );
  },
});

winTest("GetLastError read right after a failing call holds (20,000 tries)", () => {
  let wrong = 0;
  const name = wide(uniqueName("missing"));
  for (let i = 0; i < 20_000; i++) {
    kernel32().SetLastError(0);
    try {
      checkHandle(kernel32().OpenFileMappingW(4, 0, name), "OpenFileMappingW");
      wrong++;
    } catch (e) {
      if (!(e instanceof Win32Error) || e.code !== 2) wrong++;
    }
  }
  assert.equal(wrong, 0);
});

winTest("checkHandle rejects NULL and INVALID_HANDLE_VALUE with the system text", () => {
  const name = uniqueName("missing");
  const error = assert.throws(
    () =>
      checkHandle(
        kernel32().OpenFileMappingW(4, 0, wide(name)),
        "OpenFileMappingW",
        `Cannot open file mapping "${name}"`,
      ),
    (e: unknown) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_FILE_NOT_FOUND");
      assert.ok(e.systemMessage.length > 0, "FormatMessageW gave a text");
      assert.match(
        e.message,
        new RegExp(
          `^Cannot open file mapping "${name}": OpenFileMappingW failed with ERROR_FILE_NOT_FOUND \\(2\\): .+`,
        ),
      );
      return true;
    },
  );
  void error;
  assert.ok(isInvalidHandle(INVALID_HANDLE_VALUE));
  assert.ok(isInvalidHandle(null));
  kernel32().SetLastError(6);
  assert.throws(() => checkHandle(INVALID_HANDLE_VALUE, "Fake"), /ERROR_INVALID_HANDLE \(6\)/);
  kernel32().SetLastError(5);
  assert.throws(() => checkBool(0, "Fake"), /ERROR_ACCESS_DENIED \(5\)/);
  checkBool(1, "Fake"); // does not throw
});

winTest("OwnedHandle closes once, also through using", () => {
  const k = kernel32();
  const raw = checkHandle(k.CreateEventW(null, 1, 0, null), "CreateEventW");
  const flags = new Uint32Array(1);
  {
    using h = new OwnedHandle(raw);
    assert.equal(k.GetHandleInformation(h.unsafeHandle, flags), 1);
    assert.equal(h.closed, false);
  }
  assert.equal(k.GetHandleInformation(raw, flags), 0, "the handle is closed after using");
  const h2 = new OwnedHandle(checkHandle(k.CreateEventW(null, 1, 0, null), "CreateEventW"));
  h2.close();
  h2.close(); // harmless
  assert.equal(h2.closed, true);
  assert.throws(() => h2.unsafeHandle, Deno.errors.BadResource);
});

winTest("SecurityAttributes builds from SDDL and rejects a bad one", () => {
  using sa = new SecurityAttributes({ sddl: "D:P(A;;GA;;;WD)", inheritable: true });
  assert.ok(sa.bytes);
  const fields = SECURITY_ATTRIBUTES.read(sa.bytes);
  assert.equal(fields.nLength, 24);
  assert.equal(fields.bInheritHandle, 1);
  assert.notEqual(fields.lpSecurityDescriptor, null);
  using none = new SecurityAttributes({});
  assert.equal(none.bytes, null);
  assert.throws(
    () => new SecurityAttributes({ sddl: "not sddl" }),
    (e: unknown) =>
      e instanceof Win32Error && e.message.startsWith('Invalid security descriptor "not sddl"'),
  );
});

winTest("a fresh thread whose first call fails in another DLL still reads its error", async () => {
  const worker = new Worker(new URL("./fixtures/first_load_worker.ts", import.meta.url), {
    type: "module",
  });
  const { code } = await new Promise<{ code: number }>((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
  });
  worker.terminate();
  assert.notEqual(code, 0, "the error was not reset by opening kernel32 after the call");
  assert.ok(code > 0, `a Win32 error code: ${code}`);
});

Deno.test("timeouts: Infinity waits forever, other bad values are named", async () => {
  const { parseArg, timeoutSchema } = await import("../mechanisms/_validate.ts");
  assert.equal(parseArg(timeoutSchema, Infinity, "timeout"), Infinity);
  assert.equal(parseArg(timeoutSchema, 0, "timeout"), 0);
  assert.throws(() => parseArg(timeoutSchema, NaN, "timeout"), /must be a number of milliseconds/);
  assert.throws(() => parseArg(timeoutSchema, "5", "timeout"), TypeError);
  assert.throws(() => parseArg(timeoutSchema, -1, "timeout"), RangeError);
  assert.throws(() => parseArg(timeoutSchema, 1.5, "timeout"), /whole number/);
  assert.throws(() => parseArg(timeoutSchema, 2 ** 32, "timeout"), RangeError);
});
