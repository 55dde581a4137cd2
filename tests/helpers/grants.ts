/**
 * A grant list without the names sockets are bound under before they are
 * renamed into place (lib/ipc bindPath): tests that list a daemon's
 * sockets name the sockets; lib/permissions/mod_test.ts checks the bind
 * names once.
 */
export function sockets(list: string[]): string[] {
  return list.filter((p) => !/\/\.[^/]+$/.test(p));
}
