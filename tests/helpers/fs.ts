/**
 * File checks for tests.
 *
 * @module
 */

/** True when something (a symbolic link included, not followed) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}
