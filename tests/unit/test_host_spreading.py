"""storage.sources.pick_per_host, the pure host-spreading decision of a claim."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from crawler.fetch import host_key
from storage.sources import HostQuota, pick_per_host

HOSTS = ["a.example", "B.example", "c.example", "xn--bcher-kva.example"]

candidates = st.lists(
    st.tuples(st.sampled_from(HOSTS), st.integers(0, 99)), max_size=60, unique_by=lambda t: t
).map(lambda pairs: [(i, f"https://{h}/feed/{n}", "feed") for i, (h, n) in enumerate(pairs)])


@given(
    rows=candidates,
    per_host=st.integers(1, 4),
    busy=st.dictionaries(
        st.sampled_from([host_key(f"https://{h}/") for h in HOSTS]), st.integers(0, 5)
    ),
    limit=st.integers(0, 20),
)
def test_picks_in_order_within_every_quota_and_misses_nothing_it_could_take(
    rows: list[tuple[int, str, str | None]], per_host: int, busy: dict[str, int], limit: int
) -> None:
    quota = HostQuota(host_key, per_host, busy)
    picked = pick_per_host(rows, quota, limit)
    order = [sid for sid, _, _ in rows]
    assert picked == [sid for sid in order if sid in set(picked)]  # due order kept
    assert len(picked) <= limit
    url = {sid: u for sid, u, _ in rows}
    taken = Counter(host_key(url[sid]) for sid in picked)
    assert all(taken[h] + busy.get(h, 0) <= per_host for h in taken)
    if len(picked) < limit:  # every candidate left out was over its host's quota
        for sid, u, _ in rows:
            if sid not in picked:
                assert taken[host_key(u)] + busy.get(host_key(u), 0) >= per_host


def test_host_key_ignores_case_and_port_and_never_raises() -> None:
    assert host_key("https://A.Example:8443/x") == host_key("http://a.example/y") == "a.example"
    for junk in ["", "not a url", "http://[::1", "http://ex ample.com/"]:
        assert isinstance(host_key(junk), str)


@given(
    kinds=st.lists(st.sampled_from(["spider", "feed", None]), max_size=40),
    spiders=st.one_of(st.none(), st.integers(0, 3)),
    limit=st.integers(0, 20),
)
def test_spiders_take_no_more_than_the_free_spider_slots_and_never_starve_feeds(
    kinds: list[str | None], spiders: int | None, limit: int
) -> None:
    """Every candidate on its own host: only the spider budget can leave one out."""
    rows = [(i, f"https://h{i}.example/", kind) for i, kind in enumerate(kinds)]
    picked = pick_per_host(rows, HostQuota(host_key, 1, spiders=spiders), limit)
    kind_of = {sid: kind for sid, _, kind in rows}
    taken = [kind_of[sid] for sid in picked]
    assert len(picked) == len(set(picked)) <= limit
    if spiders is not None:
        assert taken.count("spider") <= spiders
    # What was left out is either past the limit or a spider over its budget.
    expected: list[int] = []
    budget = spiders
    for sid, _, kind in rows:
        if len(expected) >= limit:
            break
        if kind == "spider" and budget is not None:
            if budget <= 0:
                continue
            budget -= 1
        expected.append(sid)
    assert picked == expected
