/**
 * SMTP status: helpers for reply and enhanced code classes (keeping the
 * class digit of an enhanced code in agreement with the reply code, as
 * Postfix does when it turns a 5XX into a 4XX for soft_bounce).
 *
 * Pure: no I/O. Choosing which code to send is the daemons' business; a
 * refusal is a lib/outcome Rejection.
 */

/** The class digit of a reply code: 2 success, 3 intermediate, 4 temporary, 5 permanent. */
export function replyClass(code: number): number {
  return Math.floor(code / 100);
}

const ENHANCED_RE = /^[245]\.[0-9]{1,3}\.[0-9]{1,3}$/;

/** True if `s` is an RFC 3463 status code `class.subject.detail` with class 2, 4 or 5. */
export function isEnhancedCode(s: string): boolean {
  return ENHANCED_RE.test(s);
}

/** The class digit of an enhanced status code ("5.1.1" -> 5), or 0 if malformed. */
export function enhancedClass(enhanced: string): number {
  return isEnhancedCode(enhanced) ? enhanced.charCodeAt(0) - 48 : 0;
}

/**
 * Makes the class digit of `enhanced` agree with the reply `code`
 * (`("5.1.1", 450)` -> `"4.1.1"`). For a 3XX reply or a malformed code,
 * returns `enhanced` unchanged.
 */
export function matchEnhancedClass(enhanced: string, code: number): string {
  const cls = replyClass(code);
  if (!isEnhancedCode(enhanced) || (cls !== 2 && cls !== 4 && cls !== 5)) return enhanced;
  return String(cls) + enhanced.slice(1);
}
