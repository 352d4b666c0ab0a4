/**
 * Writes a short string's UTF-8 into `buf` at `at` and returns how many bytes it took. ASCII is copied here, one
 * char code per byte: crossing into native code (`Buffer.write`) costs more than a short string's bytes, and every
 * hashed event and every stored row writes a dozen such strings. Anything else is written by `Buffer.write`. The
 * caller makes room for `value.length * 3` bytes.
 */
export function writeShortText(buf: Buffer, at: number, value: string): number {
  let i = 0;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x80) return buf.write(value, at, "utf8");
    buf[at + i] = c;
  }
  return i;
}
