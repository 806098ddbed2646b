export type Theme = "light" | "dark" | "system";
const KEY = "ecap.theme";

export function storedTheme(): Theme {
  const t = localStorage.getItem(KEY);
  return t === "light" || t === "dark" ? t : "system";
}

export function applyTheme(t: Theme): void {
  const root = document.documentElement;
  if (t === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", t);
  if (t === "system") localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, t);
}
