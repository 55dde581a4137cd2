/**
 * Reading the files users control, with Postfix's checks: a .forward file
 * (src/local/dot_forward.c) and an :include: file (include.c). Run in the
 * process that has the right uid: the recipient writer (as_recipient.ts)
 * when local is root, local itself otherwise. Only reads; the caller
 * parses the contents.
 *
 * .forward: the first of `paths` that lstat() finds (a symbolic link
 * counts, and is then "not a regular file"). It is used only when it is a
 * regular file, owned by root or the recipient, and not world-writable
 * (group-writable is accepted, as Postfix does); otherwise a warning in
 * Postfix's words and no .forward. It is opened and compared with what
 * lstat() saw, so a file swapped in between is not read.
 *
 * :include: files are stat()ed (a symbolic link is followed) and must be
 * regular and not world-writable; their owner's uid is returned (the
 * rights for what they name).
 *
 * Files larger than 1 MiB are refused.
 *
 * @module
 */

/** Longest .forward or :include: file read. */
export const MAX_USER_FILE = 1 << 20;

/** What {@link readForward} found. */
export type ForwardRead =
  | { found: false; warnings: string[] }
  | { found: true; path: string; content: string; warnings: string[] };

/** The first existing .forward among `paths`, checked for `uid`. */
export async function readForward(paths: string[], uid: number): Promise<ForwardRead> {
  const warnings: string[] = [];
  for (const path of paths) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable) continue;
      if (e instanceof Deno.errors.PermissionDenied || isNotDir(e)) continue;
      throw e;
    }
    if (!st.isFile) {
      warnings.push(`file ${path} is not a regular file`);
    } else if (st.uid !== 0 && st.uid !== uid) {
      warnings.push(`file ${path} has bad owner uid ${st.uid}`);
    } else if ((st.mode ?? 0) & 0o002) {
      warnings.push(`file ${path} is world writable`);
    } else {
      try {
        return { found: true, path, content: await readSame(path, st), warnings };
      } catch (e) {
        warnings.push(`cannot open file ${path}: ${(e as Error).message}`);
      }
    }
    // Postfix stops at the first file lstat() finds, usable or not.
    return { found: false, warnings };
  }
  return { found: false, warnings };
}

/** An :include: file's text and owner uid. @throws {Error} with Postfix's warning text. */
export async function readInclude(path: string): Promise<{ content: string; uid: number }> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    throw new IncludeError(`unable to lookup :include: file ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (!st.isFile) throw new IncludeError(`:include: file ${path} is not a regular file`);
  if ((st.mode ?? 0) & 0o002) throw new IncludeError(`:include: file ${path} is world writable`);
  try {
    return { content: await readSame(path, st, true), uid: st.uid ?? -1 };
  } catch (e) {
    throw new IncludeError(`cannot open include file ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** An :include: file that cannot be used; the message is Postfix's warning. */
export class IncludeError extends Error {
  override readonly name = "IncludeError";
}

/** Reads `path` if it is still the file `st` describes, up to {@link MAX_USER_FILE} bytes. */
async function readSame(path: string, st: Deno.FileInfo, follow = false): Promise<string> {
  const f = await Deno.open(path, { read: true });
  try {
    const now = await f.stat();
    if (!now.isFile || now.dev !== st.dev || now.ino !== st.ino) {
      throw new Error("file status changed unexpectedly");
    }
    if (!follow) {
      const again = await Deno.lstat(path);
      if (again.isSymlink || again.ino !== st.ino) {
        throw new Error("file status changed unexpectedly");
      }
    }
    if (now.size > MAX_USER_FILE) throw new Error(`file is larger than ${MAX_USER_FILE} bytes`);
    const buf = new Uint8Array(now.size);
    let off = 0;
    while (off < buf.length) {
      const n = await f.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    return new TextDecoder().decode(buf.subarray(0, off));
  } finally {
    f.close();
  }
}

function isNotDir(e: unknown): boolean {
  return (e as { code?: string })?.code === "ENOTDIR";
}

/**
 * The destinations of a .forward or :include: file: every line not
 * starting with "#", read as an alias value (token.ts).
 */
export function fileDestinations(
  content: string,
  parse: (value: string) => string[],
): string[] {
  return content.split("\n").filter((l) => !l.startsWith("#")).flatMap((l) => parse(l));
}
