/**
 * POSIX path arithmetic for the daemons, as node:path's resolve and
 * dirname. Not node:path itself: loading Deno's Node compatibility layer
 * costs a process about 2 MiB of heap and 5 MiB of memory, and every
 * daemon reads its configuration and checks paths (issue 10: idle
 * footprint). Commands and master may use node: modules freely.
 *
 * @module
 */

/**
 * The last absolute part and the ones after it (else the current
 * directory first), with ".", ".." and repeated or trailing slashes
 * removed, as node:path's resolve.
 */
export function resolvePath(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    if (parts[i]) path = path ? `${parts[i]}/${path}` : parts[i];
  }
  if (!path.startsWith("/")) path = `${Deno.cwd()}/${path}`;
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/** The folder of an absolute, resolved path ("/" for "/" and its entries). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}
