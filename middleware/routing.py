"""Find the policy route a request falls under: dict lookup for static paths, regex otherwise."""

from __future__ import annotations

from ratelimit.plans import Route


class Router:
    """Built once; `match` is the only per-request work."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.static: dict[tuple[str, str], Route] = {}
        self.dynamic: dict[str, list[Route]] = {}
        for route in routes:
            methods = [route.method, "HEAD"] if route.method == "GET" else [route.method]
            for method in methods:
                if "{" in route.template:
                    self.dynamic.setdefault(method, []).append(route)
                else:
                    self.static.setdefault((method, route.template), route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        route = self.static.get((method, path))
        if route is not None:
            return route, {}
        for candidate in self.dynamic.get(method, ()):
            found = candidate.pattern.fullmatch(path)
            if found is not None:
                return candidate, found.groupdict()
        return None
