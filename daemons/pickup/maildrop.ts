/**
 * The maildrop contract between sendmail (any local user) and pickup (the
 * mail owner): how files are named, what their envelope may say, and how
 * pickup opens one without trusting the user who made it.
 *
 * Layout. `maildrop/` belongs to the mail owner, mode 1733: every user
 * may create files in it, nobody but the owner may list it, and the
 * sticky bit keeps users from removing or renaming each other's files.
 * sendmail cannot chown, so its file stays owned by the submitter and is
 * made readable by the mail owner: mode 0644, or 0640 when maildrop is
 * setgid (mode 3733) and so hands its group, the mail owner's, to new
 * files. With 0644 what keeps other users out is that they cannot list
 * the folder and cannot guess a name: `QUEUEID.RANDOM` carries 128 random
 * bits. The random part is therefore never logged ({@link logName}).
 * sendmail writes `.NAME.tmp` and renames it when complete, so names
 * starting with "." are not (yet) messages.
 *
 * Trust. The submitter owns the file and may have crafted anything in it,
 * so pickup takes from the kernel what the kernel knows: the uid is the
 * file's owner (st_uid), never a uid written inside; the arrival time is
 * the file's mtime. openMaildropFile (maildrop_file.ts) refuses anything that is not
 * a regular file with one link, opens with O_NOFOLLOW|O_NONBLOCK (a
 * symlink is not followed, a FIFO or a lease cannot block pickup), checks
 * that what it opened is what it lstat'ed (same dev/ino) and, since an
 * inode number may be reused, checks the opened file itself again (fstat:
 * regular, one link, and its owner is the uid reported); it bounds the
 * size and reads no further than the size it saw, so a file growing under
 * it cannot keep it reading.
 */
import { type Envelope, newQueueId } from "../../lib/queue/mod.ts";

/** The envelope attributes of a maildrop file: the queue format's plus sendmail's. */
export type MaildropAttrs = NonNullable<Envelope["attrs"]> & {
  /** Submitter's uid as sendmail saw it. Informational: pickup uses the file owner. */
  uid?: number;
  /** Submitter's login name as sendmail saw it. */
  user?: string;
  /**
   * No -f was given: the sender is the submitter's login name, which
   * pickup derives from the file's owner (sendmail's guess is the fallback).
   */
  defaultSender?: boolean;
  /** Take recipients from the message headers (sendmail -t). */
  extract?: boolean;
  /** DSN NOTIFY for the recipients taken from the headers (sendmail -t -N). */
  extractNotify?: string[];
  /** Full name for the From: header (sendmail -F). */
  fullName?: string;
};

/** A name sendmail gives a maildrop file: queue id, ".", 32 hex digits of randomness. */
export const MAILDROP_NAME = /^([0-9A-F]{15})\.[0-9a-f]{32}$/;

/** A fresh maildrop file name: arrival order first, then 128 random bits. */
export function newMaildropName(queueId = newQueueId()): string {
  const rand = crypto.getRandomValues(new Uint8Array(16));
  return `${queueId}.${Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * How a maildrop file is named in logs: `QUEUEID.*`, without its random
 * part (which would let a log reader open the file), and with anything
 * unprintable in a user-chosen name replaced, so that a name cannot forge
 * log lines.
 */
export function logName(name: string): string {
  const m = MAILDROP_NAME.exec(name);
  if (m) return `${m[1]}.*`;
  const safe = name.replace(/[^\x21-\x7e]/g, "?");
  return safe.length > 40 ? `${safe.slice(0, 40)}...` : safe;
}

/** Where the envelope records must end; a longer head is refused. */
export const HEAD_LIMIT = 4 * 1024 * 1024;

/** Largest maildrop file accepted for a message_size_limit (0: no limit). */
export function maxMaildropBytes(messageSizeLimit: number): number {
  // Content records cost 5 bytes each; twice the limit leaves room for
  // files written in small records by older sendmails.
  return messageSizeLimit > 0 ? 2 * messageSizeLimit + HEAD_LIMIT : Infinity;
}
