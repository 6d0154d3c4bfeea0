def main():
    raise SystemExit("viz: command line not built yet")
