#!/usr/bin/env python3
"""List files for meson.build, which has no glob: meson-glob.py <root> <pattern>... [--exclude REGEX].

Prints matching paths relative to <root>, sorted, one per line. Patterns are pathlib globs
('tests/unit/*.cpp', 'include/switchboard/**/*.hpp'). Used only for switchboard's own targets
(tests, header check, examples, benches); a new file is picked up on the next `meson setup
--reconfigure` (scripts/test always reconfigures).
"""
import pathlib
import re
import sys


def main(argv):
    exclude = None
    args = []
    it = iter(argv[1:])
    for a in it:
        if a == "--exclude":
            exclude = re.compile(next(it))
        else:
            args.append(a)
    if not args:
        sys.exit(__doc__)
    root = pathlib.Path(args[0])
    found = set()
    for pattern in args[1:]:
        for p in root.glob(pattern):
            if p.is_file():
                rel = p.relative_to(root).as_posix()
                if exclude is None or not exclude.search(rel):
                    found.add(rel)
    for rel in sorted(found):
        print(rel)


if __name__ == "__main__":
    main(sys.argv)
