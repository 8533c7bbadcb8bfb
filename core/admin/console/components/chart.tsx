import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip, type ChartConfiguration } from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);
Chart.defaults.font.family = 'system-ui, sans-serif';
Chart.defaults.animation = false;

/** A Chart.js chart on a canvas; new data redraws the same chart. */
export function ChartView(props: { config: ChartConfiguration; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | undefined>(undefined);
  useEffect(() => {
    chart.current = new Chart(canvas.current!, props.config);
    return () => chart.current?.destroy();
  }, []);
  useEffect(() => {
    const current = chart.current;
    if (!current) return;
    current.data = props.config.data;
    current.update();
  }, [props.config]);
  return (
    <div class="chart">
      <canvas ref={canvas} role="img" aria-label={props.label} />
    </div>
  );
}
