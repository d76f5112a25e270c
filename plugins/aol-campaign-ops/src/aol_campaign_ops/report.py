"""The weekly report as people read it: an HTML page (numbers, a bar chart of engagement and
clicks per platform drawn as inline SVG, so it shows in a mail client without fetching
anything) and the same in Markdown. Pure functions of the summary the handler computed."""

from __future__ import annotations

from html import escape
from typing import Any

#: the chart's bars, in the order drawn, with their colours
SERIES = (("engagement", "#2f6fdf"), ("clicks", "#f29d38"))
BAR_WIDTH, BAR_GAP, GROUP_GAP, CHART_HEIGHT, LABEL_SPACE = 28, 4, 36, 160, 40
#: room above the tallest bar for its value
TOP = 16
BASE = TOP + CHART_HEIGHT


def title(campaign_name: str, summary: dict[str, Any]) -> str:
    return f"{campaign_name}: week of {summary['week_start']}"


def markdown(campaign_name: str, timezone: str, summary: dict[str, Any]) -> str:
    tasks, metrics = summary["tasks"], summary["metrics"]
    posts = summary["posts_published"]
    lines = [
        f"# {title(campaign_name, summary)}",
        "",
        f"{summary['week_start']} to {summary['week_end']} (end excluded), "
        f"in {timezone}.",
        "",
        "| tasks planned | completed | overdue |",
        "| ---: | ---: | ---: |",
        f"| {tasks['planned']} | {tasks['completed']} | {tasks['overdue']} |",
        "",
        f"Posts published: {len(posts)}",
        *(f"- {p['publish_at']} {p['platform']}: "
          + (f"[{first_line(p['content'])}]({p['url']})" if p["url"] else first_line(p["content"]))
          for p in posts),
        "",
    ]
    if metrics:
        lines += [
            "| platform | entries | impressions | engagement | clicks |",
            "| --- | ---: | ---: | ---: | ---: |",
            *(f"| {platform} | {m['entries']} | {m['impressions']} | {m['engagement']} | "
              f"{m['clicks']} |" for platform, m in metrics.items()),
            "",
            f"Top platform (engagement + clicks): **{summary['top_platform']}**",
        ]
    else:
        lines.append("No metrics were recorded this week.")
    return "\n".join(lines) + "\n"


def html(campaign_name: str, timezone: str, summary: dict[str, Any]) -> str:
    tasks, metrics = summary["tasks"], summary["metrics"]
    posts = summary["posts_published"]
    listed = "".join(
        f"<li>{escape(p['publish_at'])} {escape(p['platform'])}: "
        + (f'<a href="{escape(p["url"])}">{escape(first_line(p["content"]))}</a>' if p["url"]
           else escape(first_line(p["content"])))
        + "</li>"
        for p in posts
    )
    posts_part = f"<h2>Posts published: {len(posts)}</h2>" + (
        f"<ul>{listed}</ul>" if posts else "")
    heading = escape(title(campaign_name, summary))
    rows = "".join(
        f"<tr><td>{escape(platform)}</td><td>{m['entries']}</td><td>{m['impressions']}</td>"
        f"<td>{m['engagement']}</td><td>{m['clicks']}</td></tr>"
        for platform, m in metrics.items()
    )
    metrics_part = (
        f"<h2>Engagement and clicks per platform</h2>{chart(metrics)}"
        "<table><tr><th>platform</th><th>entries</th><th>impressions</th>"
        f"<th>engagement</th><th>clicks</th></tr>{rows}</table>"
        f"<p>Top platform (engagement + clicks): <strong>"
        f"{escape(str(summary['top_platform']))}</strong></p>"
        if metrics else "<p>No metrics were recorded this week.</p>"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{heading}</title>"
        "<style>body{font-family:sans-serif;max-width:44em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:.3em .7em;text-align:right}td:first-child,th:first-child{text-align:left}"
        "</style></head><body>"
        f"<h1>{heading}</h1>"
        f"<p>{escape(summary['week_start'])} to {escape(summary['week_end'])} (end excluded), "
        f"in {escape(timezone)}.</p>"
        "<table><tr><th>tasks planned</th><th>completed</th><th>overdue</th></tr>"
        f"<tr><td>{tasks['planned']}</td><td>{tasks['completed']}</td>"
        f"<td>{tasks['overdue']}</td></tr></table>"
        f"{posts_part}{metrics_part}</body></html>\n"
    )


def first_line(content: str, width: int = 80) -> str:
    """A post's first line, shortened to ``width`` characters."""
    line = content.strip().splitlines()[0] if content.strip() else ""
    return line if len(line) <= width else line[:width - 1] + "…"


def chart(metrics: dict[str, dict[str, int]]) -> str:
    """Grouped bars, one group per platform, scaled to the largest value."""
    largest = max((m[name] for m in metrics.values() for name, _ in SERIES), default=0) or 1
    group = len(SERIES) * (BAR_WIDTH + BAR_GAP)
    width = len(metrics) * (group + GROUP_GAP) + GROUP_GAP
    parts = []
    for index, (platform, m) in enumerate(metrics.items()):
        left = GROUP_GAP + index * (group + GROUP_GAP)
        for offset, (name, colour) in enumerate(SERIES):
            height = round(CHART_HEIGHT * m[name] / largest)
            x = left + offset * (BAR_WIDTH + BAR_GAP)
            parts.append(
                f'<rect x="{x}" y="{BASE - height}" width="{BAR_WIDTH}" '
                f'height="{height}" fill="{colour}"><title>{escape(platform)} {name}: '
                f"{m[name]}</title></rect>"
                f'<text x="{x + BAR_WIDTH / 2}" y="{BASE - height - 4}" '
                f'font-size="11" text-anchor="middle">{m[name]}</text>'
            )
        parts.append(f'<text x="{left + group / 2}" y="{BASE + 18}" font-size="12" '
                     f'text-anchor="middle">{escape(platform)}</text>')
    legend = "".join(
        f'<rect x="{GROUP_GAP + i * 110}" y="{BASE + 26}" width="10" height="10" '
        f'fill="{colour}"/><text x="{GROUP_GAP + i * 110 + 14}" y="{BASE + 35}" '
        f'font-size="12">{name}</text>'
        for i, (name, colour) in enumerate(SERIES)
    )
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{BASE + LABEL_SPACE}" role="img" '
            f'aria-label="engagement and clicks per platform">{"".join(parts)}{legend}</svg>')
