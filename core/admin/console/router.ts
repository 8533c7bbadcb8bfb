import { useEffect, useState } from 'preact/hooks';

/** The console's pages live at real paths (/, /queue, /messages/ID, /sessions); the server answers each with the same page. */
export function navigate(path: string): void {
  if (path === location.pathname) return;
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const changed = () => setPath(location.pathname);
    addEventListener('popstate', changed);
    return () => removeEventListener('popstate', changed);
  }, []);
  return path;
}

/** Runs `load` now and every `ms`, until the component goes. */
export function usePolling(load: () => void, ms: number, deps: readonly unknown[]): void {
  useEffect(() => {
    load();
    const timer = setInterval(load, ms);
    return () => clearInterval(timer);
  }, deps);
}
