// What is wrong with a typed resident ID number, checked as the server checks it (GB 11643,
// models/idnumber.py), so a form can say exactly that: {key, params} for t(), or null.
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";
const PROVINCES = new Set(("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 "
  + "51 52 53 54 61 62 63 64 65 71 81 82 83 91").split(" "));

export function checkCharacter(first17) {
  let total = 0;
  for (let i = 0; i < 17; i += 1) total += Number(first17[i]) * WEIGHTS[i];
  return CHECK[total % 11];
}

export function idNumberProblem(raw) {
  const value = (raw || "").trim().toUpperCase();
  if (!value) return { key: "id_missing" };
  if (value.length !== 18) return { key: "id_length", params: { n: value.length } };
  if (!/^\d{17}$/.test(value.slice(0, 17))) return { key: "id_digits" };
  if (!/[\dX]/.test(value[17])) return { key: "id_last" };
  if (!PROVINCES.has(value.slice(0, 2))) return { key: "id_region", params: { code: value.slice(0, 2) } };
  const [y, m, d] = [value.slice(6, 10), value.slice(10, 12), value.slice(12, 14)].map(Number);
  const born = new Date(Date.UTC(y, m - 1, d));
  if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d) {
    return { key: "id_date", params: { date: value.slice(6, 14) } };
  }
  if (y < 1900 || born.getTime() > Date.now()) return { key: "id_date_impossible", params: { date: value.slice(6, 14) } };
  if (value[17] !== checkCharacter(value.slice(0, 17))) return { key: "id_check" };
  return null;
}

export function say(t, problem) {
  let text = t(problem.key);
  for (const [name, value] of Object.entries(problem.params || {})) {
    text = text.replace(`{${name}}`, value);
  }
  return text;
}
