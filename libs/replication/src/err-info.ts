// Errors as log fields: message and codes only, never values a driver error may quote.
export function errInfo(err: unknown): { message: string; code?: string; cause?: { code?: string; message?: string } } {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = (err as { code?: string }).code;
  const c = err.cause as { code?: unknown; message?: unknown; severity?: unknown } | undefined;
  // A PostgreSQL error's message may quote an input value: only its SQLSTATE is logged.
  const cause = c && typeof c === 'object' ? { ...(typeof c.code === 'string' ? { code: c.code } : {}), ...(typeof c.message === 'string' && c.severity === undefined ? { message: c.message.slice(0, 300) } : {}) } : undefined;
  return { message: err.message, ...(code ? { code } : {}), ...(cause && Object.keys(cause).length > 0 ? { cause } : {}) };
}
