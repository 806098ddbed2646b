export function StockBadge({ inventory }: { inventory: number }) {
  if (inventory <= 0) return <span className="badge stock-out">Sold out</span>;
  if (inventory <= 20) return <span className="badge stock-low">{inventory} in stock</span>;
  return <span className="badge stock-ok">{inventory} in stock</span>;
}
