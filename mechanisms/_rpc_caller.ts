/**
 * Whether a Microsoft RPC caller is on this machine, from what the runtime reports about it.
 * Kept apart from msrpc.ts so the decision can be tested for callers a test cannot produce
 * (a remote machine).
 *
 * @module
 */

/** What the runtime told about a caller: see `MsRpcCaller` in msrpc.ts. */
export interface CallerFacts {
  /** `I_RpcBindingInqTransportType`'s answer. */
  transport: "lrpc" | "cn" | "dg" | "unknown";
  /** The protocol sequence of the client's binding, lower case. */
  protseq?: string;
  /** The client's network address. */
  address?: string;
}

/**
 * Whether an address names this machine's loopback interface.
 *
 * @param address An IPv4 or IPv6 address, or a name.
 * @returns `true` for 127.0.0.0/8, `::1`, `::ffff:127.x.y.z` and `localhost`.
 */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) ||
    /^(0{0,4}:){2,7}0{0,3}1$/.test(a) || a === "::1" ||
    /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === "localhost";
}

/**
 * Whether a caller is local. The protocol sequence decides when the runtime gave one (Wine's
 * `I_RpcBindingInqTransportType` answers "local RPC" for every transport, so the transport alone
 * is trusted only when nothing else is known): ncalrpc always; ncacn_ip_tcp from a loopback
 * address; ncacn_np with no address, a loopback one, or this machine's name (a named-pipe
 * client's address is its computer's name). Anything else is remote.
 *
 * @param caller What the runtime reported.
 * @param hostname This machine's name (`Deno.hostname()`).
 * @returns Whether the call comes from this machine.
 *
 * @example
 * ```ts
 * import { isLocalCaller } from "./_rpc_caller.ts";
 * isLocalCaller({ transport: "cn", protseq: "ncacn_ip_tcp", address: "10.0.0.7" }, "pc"); // false
 * ```
 */
export function isLocalCaller(caller: CallerFacts, hostname: string): boolean {
  const { protseq, address } = caller;
  if (protseq === undefined) return caller.transport === "lrpc";
  if (protseq === "ncalrpc") return true;
  if (protseq === "ncacn_ip_tcp") return address !== undefined && isLoopback(address);
  if (protseq === "ncacn_np") {
    if (address === undefined || isLoopback(address)) return true;
    const name = address.replace(/^\\\\/, "").toLowerCase();
    const host = hostname.toLowerCase();
    return name === host || name === host.split(".")[0];
  }
  return false;
}
