/**
 * The size each file had when a large run was checked, at 16 bytes a file, so that the run
 * sends exactly the files it checked, at the size it checked, without holding their list:
 * 300,000 files take under 5 MB. Files are known by a 52-bit hash of their absolute path.
 */
export class CheckedSizes {
  private keys: Float64Array = new Float64Array(1024);
  private sizes: Float64Array = new Float64Array(1024);
  private count = 0;
  private sealed = false;

  add(absPath: string, bytes: number): void {
    if (this.count === this.keys.length) {
      this.keys = grow(this.keys);
      this.sizes = grow(this.sizes);
    }
    this.keys[this.count] = pathKey(absPath);
    this.sizes[this.count] = bytes;
    this.count++;
  }

  /** Sorts for lookup; nothing can be added after. */
  seal(): this {
    const order = Array.from({ length: this.count }, (_, i) => i).sort((a, b) => this.keys[a]! - this.keys[b]!);
    this.keys = Float64Array.from(order, (i) => this.keys[i]!);
    this.sizes = Float64Array.from(order, (i) => this.sizes[i]!);
    this.sealed = true;
    return this;
  }

  /** The checked size, or undefined for a file the check did not see. */
  sizeOf(absPath: string): number | undefined {
    if (!this.sealed) throw new Error('CheckedSizes.sizeOf before seal()');
    const key = pathKey(absPath);
    let [low, high] = [0, this.count - 1];
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = this.keys[mid]!;
      if (at === key) return this.sizes[mid];
      if (at < key) low = mid + 1;
      else high = mid - 1;
    }
    return undefined;
  }
}

function grow(array: Float64Array): Float64Array {
  const bigger = new Float64Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

/** Two 32-bit FNV-1a hashes of the path, joined into 52 bits (exact in a double). */
function pathKey(path: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000197);
  }
  return (b >>> 12) * 2 ** 32 + (a >>> 0);
}
