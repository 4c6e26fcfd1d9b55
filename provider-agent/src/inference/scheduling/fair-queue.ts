/**
 * A queue that serves its keys in turn: with requests A1 A2 A3 B1 C1 queued, it yields A1 B1 C1 A2 A3.
 * One session (key) cannot starve the others by queueing many requests.
 */
export class FairQueue<T> {
  private readonly itemsByKey = new Map<string, T[]>();
  /** Keys that have items, in the order they will next be served. */
  private readonly turns: string[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(key: string, item: T): void {
    const items = this.itemsByKey.get(key);
    if (items) items.push(item);
    else {
      this.itemsByKey.set(key, [item]);
      this.turns.push(key);
    }
    this.count++;
  }

  /** The oldest item of the key whose turn it is; that key then goes to the back of the line. */
  shift(): T | undefined {
    const key = this.turns.shift();
    if (key === undefined) return undefined;
    const items = this.itemsByKey.get(key)!;
    const item = items.shift()!;
    if (items.length > 0) this.turns.push(key);
    else this.itemsByKey.delete(key);
    this.count--;
    return item;
  }

  /** Takes `item` out wherever it waits (an aborted request); false when it is not queued. */
  remove(key: string, item: T): boolean {
    const items = this.itemsByKey.get(key);
    const index = items?.indexOf(item) ?? -1;
    if (!items || index < 0) return false;
    items.splice(index, 1);
    if (items.length === 0) {
      this.itemsByKey.delete(key);
      this.turns.splice(this.turns.indexOf(key), 1);
    }
    this.count--;
    return true;
  }
}
