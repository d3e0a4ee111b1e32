"""``dsmt router``: run a PsEPR router (DESIGN.md §4).

Usage::

    dsmt router [--config FILE] [--listen HOST:PORT] [--accounts FILE]
                [--peer HOST:PORT ...] [--insecure]

Serves clients on ``--listen`` (default 127.0.0.1:23345) with the accounts
of ``--accounts`` (a TOML file with an ``[accounts]`` table of scrypt hashes,
see ``dsmt passwd``); ``--peer`` adds routers to the mesh's static peer
list (the mesh account and listener come from the config file, see
``gateways.psepr.config``). Options override the config file. A
non-loopback listener needs ``[router.tls]`` or ``--insecure``.

Once listening it prints one line to stdout and flushes it::

    router NAME listening on HOST:PORT mesh HOST:PORT|-

and runs until SIGINT/SIGTERM, then closes every connection and exits 0.
"""

from __future__ import annotations

import asyncio
import resource
import signal

import click


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Router TOML file.")
@click.option("--listen", help="HOST:PORT for clients (default 127.0.0.1:23345).")
@click.option("--accounts", "accounts_path", type=click.Path(dir_okay=False),
              help="TOML file with an [accounts] table.")
@click.option("--peer", "peers", multiple=True, help="HOST:PORT of a peer router (repeatable).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback listener without TLS.")
def command(config_path, listen, accounts_path, peers, insecure) -> None:
    """Run a PsEPR router: leases, routing, mesh with peer routers."""
    from gateways.psepr import accounts, config
    from gateways.psepr._loop import run
    from gateways.psepr.router import serve

    source = config_path or "<command line>"
    cfg = config.load(config_path) if config_path else config.RouterConfig()
    if listen:
        cfg = cfg.replace(listen=config.parse_address(listen, config.CLIENT_PORT, source,
                                                      "--listen"))
    if accounts_path:
        cfg = cfg.replace(accounts=accounts.load(accounts_path))
    if peers:
        extra = tuple(config.parse_address(p, config.MESH_PORT, source, "--peer") for p in peers)
        cfg = cfg.replace(mesh=config.dataclasses.replace(cfg.mesh, peers=cfg.mesh.peers + extra))
    if insecure:
        cfg = cfg.replace(insecure=True)
    cfg.check(source)
    _raise_fd_limit()

    def ready(router) -> None:
        host, port = router.address
        mesh = "-" if router.mesh_address is None else "%s:%d" % router.mesh_address
        click.echo(f"router {cfg.name} listening on {host}:{port} mesh {mesh}")

    run(_main(cfg, ready, serve))


async def _main(cfg, ready, serve) -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await serve(cfg, ready)
    except asyncio.CancelledError:
        pass


def _raise_fd_limit() -> None:
    """Every client is a file descriptor: allow as many as the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
