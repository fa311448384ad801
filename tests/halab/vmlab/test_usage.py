"""Where a drill's time went on the VMs, from what they printed."""

from __future__ import annotations

import pytest

from halab.vmlab.usage import UsageSnapshot, between, cpu_jiffies, haproxy_stat, summary_line

STAT_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,qtime,"
    "ctime,rtime,ttime,"
)


def _row(
    name: str, *, lbtot: int, wretr: int, status: str, rtime: int, px: str = "web_nodes"
) -> str:
    cols = {
        "pxname": px, "svname": name, "qmax": "2", "smax": "3", "econ": "1", "eresp": "0",
        "wretr": str(wretr), "wredis": "0", "status": status, "chkfail": "0",
        "lbtot": str(lbtot), "check_status": "L7OK" if status == "UP" else "L4TOUT",
        "qtime": "0", "ctime": "2", "rtime": str(rtime), "ttime": str(rtime + 5),
    }  # fmt: skip
    header = STAT_HEADER[2:].rstrip(",").split(",")
    return ",".join(cols.get(h, "") for h in header) + ","


def _stat(lbtot: int, wretr: int, status: str, rtime: int) -> str:
    return "\n".join([
        STAT_HEADER,
        _row("web_vip", lbtot=0, wretr=0, status="OPEN", rtime=0, px="web_vip").replace(
            "web_vip,web_vip", "web_vip,FRONTEND"
        ),
        _row("web-1", lbtot=lbtot, wretr=0, status="UP", rtime=rtime),
        _row("web-2", lbtot=lbtot, wretr=wretr, status=status, rtime=rtime),
        _row("BACKEND", lbtot=2 * lbtot, wretr=wretr, status="UP", rtime=rtime),
        "",
    ])  # fmt: skip


def test_cpu_jiffies_leave_idle_and_iowait_out() -> None:
    assert cpu_jiffies("cpu  100 5 50 800 20 1 2 3 0 0") == (161, 981)
    with pytest.raises(ValueError, match="cpu line"):
        cpu_jiffies("intr 1 2 3")


def test_haproxy_stat_keeps_the_web_backend() -> None:
    rows = haproxy_stat(_stat(10, 0, "UP", 40))
    assert set(rows) == {"web-1", "web-2", "BACKEND"}
    assert rows["web-2"]["status"] == "UP" and rows["BACKEND"]["lbtot"] == "20"
    assert haproxy_stat("") == {} and haproxy_stat("Unknown command") == {}


def test_between_reports_busy_shares_added_counters_and_gauges_at_the_end() -> None:
    before = UsageSnapshot(
        100.0,
        cpu={"lb-1": (1000, 10000), "web-2": (50, 1000)},
        haproxy={"lb-1": haproxy_stat(_stat(10, 0, "UP", 40))},
    )
    after = UsageSnapshot(
        130.0,
        # web-2 was destroyed: it no longer answers and is left out.
        cpu={"lb-1": (1750, 11000)},
        haproxy={"lb-1": haproxy_stat(_stat(25, 4, "DOWN", 90))},
    )
    usage = between(before, after)
    assert usage["seconds"] == 30.0
    assert usage["cpu_busy"] == {"lb-1": 0.75}
    web2 = usage["haproxy"]["lb-1"]["web-2"]
    assert (web2["requests"], web2["retries"], web2["status"]) == (15, 4, "DOWN")
    assert web2["response_ms_avg"] == "90" and web2["queue_max_since_start"] == "2"
    line = summary_line(usage)
    assert "lb-1 75%" in line and "30 requests, 4 retries" in line and "web-2 DOWN" in line
