// Client-side checks mirroring the server's rules; the server's per-field
// errors are shown as well.
export function validateEmail(email: string): string | null {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim()) ? null : "Valid email is required";
}

export function passwordProblem(p: string): string | null {
  if (p.length < 8) return "Password must be at least 8 characters";
  if (!/[a-z]/.test(p) || !/[A-Z]/.test(p) || !/\d/.test(p) || !/[@$!%*?&]/.test(p))
    return "Password must contain uppercase, lowercase, number and special character";
  return null;
}

export function required(fields: Record<string, string>, names: string[]): Record<string, string> {
  const errs: Record<string, string> = {};
  for (const n of names) if (!fields[n]?.trim()) errs[n] = "Required";
  return errs;
}
