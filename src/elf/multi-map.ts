/** Name → object maps where most names are unique: one value, or an array when a name repeats. */
export type Multi<T> = Map<string, T | T[]>;

export function multiAdd<T extends object>(map: Multi<T>, key: string, value: T): void {
  const cur = map.get(key);
  if (cur === undefined) map.set(key, value);
  else if (Array.isArray(cur)) cur.push(value);
  else map.set(key, [cur, value]);
}

export function multiDelete<T extends object>(map: Multi<T>, key: string, value: T): void {
  const cur = map.get(key);
  if (cur === value) map.delete(key);
  else if (Array.isArray(cur)) {
    const rest = cur.filter((v) => v !== value);
    if (rest.length === 1) map.set(key, rest[0]!);
    else map.set(key, rest);
  }
}

export function multiAll<T extends object>(map: Multi<T>, key: string): readonly T[] {
  const cur = map.get(key);
  if (cur === undefined) return [];
  return Array.isArray(cur) ? cur : [cur];
}
