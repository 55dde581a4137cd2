/**
 * Fetching a domain's MTA-STS policy (RFC 8461 section 3.3): an HTTPS GET
 * of "https://mta-sts.<domain>/.well-known/mta-sts.txt", where
 *
 * - the server's certificate must be valid for "mta-sts.<domain>" (fetch's
 *   own WebPKI check; tests and private CAs pass a Deno.HttpClient made
 *   with `caCerts`);
 * - redirects are not followed: any 3xx is a failure, as is anything but 200;
 * - the media type must be text/plain (parameters such as charset allowed);
 * - the body is read up to 64 KiB and no further, and must be UTF-8;
 * - the whole exchange, body included, is bounded by a time-out.
 *
 * Every failure throws {@link StsFetchError} (or {@link StsPolicyError}
 * for a policy that does not parse): for the cache logic (cache.ts) both
 * mean "no new policy". Does not cache (storing the policy is the
 * caller's) and does not look at HTTP caching headers: max_age rules.
 *
 * @module
 */
import { isDomainName, MAX_POLICY_SIZE, parseStsPolicy, type StsPolicy } from "./policy.ts";

/** The policy could not be fetched; the message says where and why. */
export class StsFetchError extends Error {
  override readonly name = "StsFetchError";
}

/** Options for {@link fetchStsPolicy}. */
export interface FetchStsPolicyOptions {
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** An HTTP client with extra CA certificates (Deno.createHttpClient({ caCerts })). */
  client?: Deno.HttpClient;
  /** For the whole exchange. @default 60000 (RFC 8461 3.3 suggests a minute) */
  timeoutMs?: number;
}

/** Reads at most `limit` octets of a body; more is an error. */
async function readCapped(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`body larger than ${limit} octets`);
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Fetches and parses `domain`'s policy (see the module comment). */
export async function fetchStsPolicy(
  domain: string,
  opts: FetchStsPolicyOptions = {},
): Promise<StsPolicy> {
  const name = domain.toLowerCase().replace(/\.$/, "");
  if (!isDomainName(name)) throw new StsFetchError(`not a domain name: "${domain}"`);
  const url = `https://mta-sts.${name}/.well-known/mta-sts.txt`;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const signal = AbortSignal.timeout(timeoutMs);
  const fail = (why: string) => new StsFetchError(`${url}: ${why}`);
  const failure = (e: unknown) => {
    if (signal.aborted) return fail(`no answer within ${timeoutMs} ms`);
    const cause = (e as Error).cause; // fetch's TypeError says "fetch failed", its cause why
    const why = e instanceof Error ? e.message : String(e);
    return fail(cause instanceof Error ? `${why}: ${cause.message}` : why);
  };
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, {
      redirect: "manual",
      signal,
      client: opts.client,
    });
  } catch (e) {
    throw failure(e);
  }
  let body: Uint8Array;
  try {
    if (res.status >= 300 && res.status < 400) {
      throw fail(`redirect refused (HTTP ${res.status} to ${res.headers.get("location") ?? "?"})`);
    }
    if (res.status !== 200) throw fail(`HTTP ${res.status}`);
    const type = (res.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "text/plain") throw fail(`media type "${type}", not text/plain`);
    if (Number(res.headers.get("content-length") ?? 0) > MAX_POLICY_SIZE) {
      throw fail(`body larger than ${MAX_POLICY_SIZE} octets`);
    }
    body = await readCapped(res.body ?? new Blob().stream(), MAX_POLICY_SIZE);
  } catch (e) {
    await res.body?.cancel().catch(() => {});
    throw e instanceof StsFetchError ? e : failure(e);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw fail("body is not UTF-8");
  }
  return parseStsPolicy(text);
}
