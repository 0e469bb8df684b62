def main() -> None:
    raise SystemExit("omnisync CLI not assembled yet")
