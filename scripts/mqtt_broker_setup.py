"""Make a site's broker files for configs/mosquitto/smarteye.conf: a CA and the broker's certificate, a
password file with one user per edge node (user name = node name) and one for the ground station, and the
ACL by which a node publishes only under its own topics.  Prints each user's password once, and the `mqtt:`
block each side then puts in its config.  Private keys are written here, mode 0600, never committed.

    python3 scripts/mqtt_broker_setup.py --dir /etc/mosquitto/smarteye --host broker.site.example \\
        --node site-a --node site-b
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from smarteye.sim.broker import STATION_USER, acl_rules
from smarteye.sim.tls import make_server_pki


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/etc/mosquitto/smarteye"), help="where to write the files")
    parser.add_argument("--host", action="append", default=[], help="broker host name or IP (repeatable)")
    parser.add_argument("--node", action="append", required=True, help="edge node name (repeatable)")
    parser.add_argument("--station", default=STATION_USER, help="the ground station's user name")
    parser.add_argument("--prefix", default="smarteye/v1", help="MQTT topic prefix")
    args = parser.parse_args(argv)
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        print("error: mosquitto_passwd not found (apt-get install mosquitto)", file=sys.stderr)
        return 1
    hosts = args.host or ["127.0.0.1", "localhost"]
    pki = make_server_pki(args.dir, hosts)
    (args.dir / "acl").write_text(acl_rules(args.prefix, [args.station]), encoding="utf-8")
    passwd = args.dir / "passwd"
    passwd.unlink(missing_ok=True)
    passwd.touch(mode=0o600)
    users = {name: secrets.token_urlsafe(18) for name in (*args.node, args.station)}
    for name, secret in users.items():
        subprocess.run([tool, "-b", str(passwd), name, secret], check=True)
    print(f"wrote {pki.ca_file}, {pki.cert_file}, {pki.key_file}, {passwd}, {args.dir / 'acl'}")
    for name, secret in users.items():
        block = {"url": f"mqtts://{hosts[0]}:8883", "username": name, "password": secret,
                 "tls": {"ca_file": str(pki.ca_file)}}  # fmt: skip
        print(f"{name}: mqtt: {json.dumps(block)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
