"""Shared fixtures: small datasets written in each supported layout."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from models.data import synthetic  # noqa: E402
from tests.support import ACCENTED_ITEM, write  # noqa: E402

# Seconds a test may take, setup included, by its marker: past it pytest-timeout stops it with
# its stack (an e2e test may pay for the shared run, about 4 minutes alone on 2 cores).
TIMEOUTS = {"e2e": 1500, "slow": 420, None: 120}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            level = next((m for m in ("e2e", "slow") if item.get_closest_marker(m)), None)
            item.add_marker(pytest.mark.timeout(TIMEOUTS[level]))
        # With pytest-xdist (make test: -n 2 --dist loadgroup) each group runs in one worker:
        # the tests reading the shared run together, so that it is made once; the others by
        # module, so that a module's fixtures are made once.
        group = next((name for name in ("shared_run", "made_run") if name in item.fixturenames),
                     item.module.__name__)
        item.add_marker(pytest.mark.xdist_group(group))


# The order in which --dist loadgroup hands out the groups (by the first prefix a test of the group
# starts with; the rest last): the long ones first, so that the short ones fill the end of the run.
# The PortableRunner test (a job service, a worker pool and two runs, about 80 s) is the one long
# test outside tests/e2e/ and tests/component/.
HANDED_OUT_FIRST = ("tests/e2e/", "tests/compile/test_portable.py", "tests/component/")


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """With --dist loadgroup (make test): the groups are handed out in HANDED_OUT_FIRST's order,
    each part in xdist's own order (most tests first). xdist's order alone left the one-test
    modules that each make a whole run (`make run`, the Kubeflow harness, the ml-latest run) for
    last, so one of them could run alone at the end while the other worker idled; with the e2e
    groups alone first, the PortableRunner test still did (a whole suite at 8ef2846: one worker
    idle for its last 102 s of 1,253)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    def rank(unit):
        return min((at for at, prefix in enumerate(HANDED_OUT_FIRST)
                    for nodeid in unit[1] if nodeid.startswith(prefix)),
                   default=len(HANDED_OUT_FIRST))

    class LongestFirst(LoadGroupScheduling):
        _ordered = False

        def _assign_work_unit(self, node):
            if not self._ordered:
                units = sorted(self.workqueue.items(), key=rank)
                self.workqueue.clear()
                self.workqueue.update(units)
                self._ordered = True
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A small synthetic dataset in the canonical layout (300 users, 400 items)."""
    folder = tmp_path_factory.mktemp("tiny")
    return synthetic.write_canonical(str(folder), num_users=300, num_items=400,
                                     num_interactions=15_000, seed=3)


@pytest.fixture
def canonical(tmp_path):
    """A hand-written canonical dataset; tests overwrite single files to break it."""
    write(tmp_path, "interactions.csv",
          "user_id,item_id,timestamp,rating\n1,10,100,5\n1,11,200,3\n2,10,150,4\n2,12,300,\n")
    write(tmp_path, "users.csv", "user_id,age,gender,occupation\n1,25,F,writer\n2,,M,\n")
    write(tmp_path, "items.csv",
          "item_id,title,genres,year\n10,Heat (1995),Action|Crime,1995\n11,Up,Animation,\n"
          "12,\"Crash, The (1996)\",Drama,1996\n13,Never Seen,,\n")
    return str(tmp_path)


@pytest.fixture
def ml100k(tmp_path):
    """Three users and items in the MovieLens 100K layout (tab/pipe separated, latin-1)."""
    write(tmp_path, "u.data", "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t878542960\n"
                              "3\t3\t1\t879372434\n")
    write(tmp_path, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n")
    write(tmp_path, "u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)))
    write(tmp_path, "u.item",
          f"1|Toy Story (1995)|01-Jan-1995||http://x|{ml100k_flags('Animation', 'Comedy')}\n"
          f"2|GoldenEye (1995)|01-Jan-1995||http://x|{ml100k_flags('Action')}\n"
          f"3|Am\xe9lie|01-Jan-2001||http://x|{ml100k_flags('Romance')}\n", encoding="latin-1")
    return str(tmp_path)


@pytest.fixture
def ml1m(tmp_path):
    """The MovieLens 1M layout ('::' separated, latin-1)."""
    write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(tmp_path, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    write(tmp_path, "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                  "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                                  "2::Caf\xe9 (1990)::Comedy\n", encoding="latin-1")
    return str(tmp_path)


ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def ml100k_flags(*on):
    """u.item's genre columns: 1 for each genre in ``on``, in u.genre's order."""
    return "|".join("1" if g in on else "0" for g in ML100K_GENRES)


# Latin-1 titles as GroupLens ships them (u.item is latin-1, not UTF-8).
LATIN1_TITLES = ["Misérables, Les (1995)", "Cité des enfants perdus, La (1995)",
                 "Niño, El \"The Kid\" (1996)", "Über (Alles), Das (1997)", "Être et avoir (1997)"]


@pytest.fixture(scope="session")
def ml100k_hazards(tmp_path_factory):
    """A MovieLens-100K-layout folder (latin-1, '|' and tab separated) with what real data
    carries: accented titles with commas, quotes and parentheses; ids that are not small
    integers; the 'unknown' item with an empty release date and the 'unknown' genre;
    alphanumeric zip codes; catalogue items nobody interacted with; users with one
    interaction; a user whose interactions share one timestamp; user and item ids with
    accents."""
    folder = tmp_path_factory.mktemp("ml100k-hazards")
    data = synthetic.generate(num_users=200, num_items=300, num_interactions=9_000, seed=11)
    uid = {u[0]: str(700_000 + 7 * int(u[0])) for u in data["users"]}
    iid = {i[0]: str(90_000 + 13 * int(i[0])) for i in data["items"]}
    users = [(uid[u], age, gender, occupation, f"{chr(65 + int(u) % 26)}{int(u) % 10}K {int(u) % 9}Z")
             for u, age, gender, occupation in data["users"]]
    # Users with a single interaction, as the tail of real logs has.
    singles = [str(800_000 + n) for n in range(3)]
    users += [(u, 30, "F", "other", "00000") for u in singles]
    rows = [(uid[u], iid[i], r, t) for u, i, t, r in data["interactions"]]
    rows += [(u, iid[str(1 + n)], 4, 880_000_000 + n) for n, u in enumerate(singles)]
    # Ids that are not ASCII (latin-1 encodable, as the file is): two users who copy the
    # timelines of others, and an item that others interacted with.
    accented = {"zoë-71": uid["2"], "rené-72": uid["3"]}
    users += [(u, 41, "M", "artist", "H2X 1Y4") for u in accented]
    rows += [(u, i, r, t + 1) for u, source in accented.items() for s, i, r, t in list(rows) if s == source]
    rows += [(uid[u], ACCENTED_ITEM, 5, 884_000_000 + int(u)) for u in map(str, range(4, 30))]
    # One user rated everything in the same second.
    same = uid["1"]
    rows = [(u, i, r, 881_000_000 if u == same else t) for u, i, r, t in rows]
    write(folder, "u.user", "".join("|".join(map(str, u)) + "\n" for u in users), encoding="latin-1")
    write(folder, "u.data", "".join("\t".join(map(str, r)) + "\n" for r in rows), encoding="latin-1")
    write(folder, "u.genre", "".join(f"{g}|{n}\n" for n, g in enumerate(ML100K_GENRES)) + "\n",
          encoding="latin-1")
    lines = []
    for n, (item, title, genres, year) in enumerate(data["items"]):
        if n < len(LATIN1_TITLES):
            title = LATIN1_TITLES[n]
        title = title.encode("latin-1", "replace").decode("latin-1")  # no CJK in latin-1
        flags = ml100k_flags(*genres.split("|"))
        lines.append(f"{iid[item]}|{title}|01-Jan-{year}||http://us.imdb.com/M/title-exact?x|{flags}\n")
    lines.append(f"{ACCENTED_ITEM}|Crème brûlée (1999)|01-Jan-1999||http://x|{ml100k_flags('Comedy')}\n")
    # The 'unknown' item of ML-100K, and catalogue items without interactions.
    lines.append(f"99999267|unknown||||{ml100k_flags('unknown')}\n")
    none = ml100k_flags("Drama")
    lines += [f"{99_999_300 + n}|Jamais vu n° {n} (1998)|01-Jan-1998||http://x|{none}\n" for n in range(4)]
    write(folder, "u.item", "".join(lines), encoding="latin-1")
    return str(folder)


# Titles as ml-latest's movies.csv spells them: commas (quoted), quotes, accents and scripts
# in UTF-8, a year range, a trailing space, no year at all.
ML_LATEST_TITLES = ["American President, The (1995)", '"Great Performances" Cats (1998)',
                    "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
                    "Spirited Away (Sen to Chihiro no kamikakushi) (2001)", "千と千尋の神隠し (2001)",
                    "Babylon 5 (1994–1998)", "Hyena Road (2015) ", "Black Mirror"]


@pytest.fixture(scope="session")
def ml_latest(tmp_path_factory):
    """A folder as GroupLens ships ml-latest-small (and ml-25m / ml-32m): ratings.csv,
    movies.csv, tags.csv, links.csv and README.txt, UTF-8 CSV with headers, no user file;
    half-star ratings; titles of ML_LATEST_TITLES; '(no genres listed)'; movies nobody rated;
    ids in the tens of thousands; users whose ratings share one second."""
    import csv

    folder = tmp_path_factory.mktemp("ml-latest-small")
    data = synthetic.generate(num_users=150, num_items=300, num_interactions=7_000, seed=17)
    iid = {i[0]: str(1_000 + 97 * int(i[0])) for i in data["items"]}

    def table(name, header, rows):
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")  # csv quotes only what needs it
            writer.writerow(header)
            writer.writerows(rows)

    ratings = [(u, iid[i], r - 0.5 if (int(u) + t) % 3 == 0 else float(r), t)
               for u, i, t, r in data["interactions"]]
    ratings = [(u, i, r, 1_500_000_000 if u == "2" else t) for u, i, r, t in ratings]
    table("ratings.csv", ["userId", "movieId", "rating", "timestamp"],
          [(u, i, f"{r:.1f}", t) for u, i, r, t in ratings])
    movies = []
    for n, (item, title, genres, _) in enumerate(data["items"]):
        title = ML_LATEST_TITLES[n] if n < len(ML_LATEST_TITLES) else title
        movies.append((iid[item], title, "(no genres listed)" if n % 50 == 7 else genres))
    movies += [(str(200_000 + n), f"Nobody Rated This {n} (2018)", "Documentary") for n in range(3)]
    table("movies.csv", ["movieId", "title", "genres"], movies)
    # Tags as people type them: repeated in other cases and spacing, with commas, accents and
    # CJK, on rated and unrated movies.
    tags = [(u, i, "funny, dark", t) for u, i, _, t in ratings[:50]]
    first, second = iid["1"], iid["2"]
    tags += [("3", first, tag, 1_500_000_100 + n) for n, tag in enumerate(
        ["Pixar", "pixar ", "PIXAR", "time travel", "Studio Ghibli 宮崎", "time  travel", "Ça va"])]
    tags += [("4", second, "dark", 1_500_000_200), ("5", "200001", "never rated", 1_500_000_300)]
    table("tags.csv", ["userId", "movieId", "tag", "timestamp"], tags)
    table("links.csv", ["movieId", "imdbId", "tmdbId"], [(m[0], f"{n:07d}", n) for n, m in enumerate(movies)])
    (folder / "README.txt").write_text("Summary\n=======\nA small fixture shaped like ml-latest-small.\n")
    return str(folder)


@pytest.fixture(scope="session")
def made_run(tmp_path_factory):
    """The README's main command, ``make run``, as written, its output and serving folders
    moved to a temp dir: (the finished process, output dir, serving dir). The walkthrough
    notebook runs again in the same output dir, as a user who ran ``make run`` first would
    (tests/e2e/test_notebooks.py); what it checks was printed by this process."""
    import subprocess
    from types import SimpleNamespace

    from tests.support import ROOT

    root = tmp_path_factory.mktemp("made-run")
    out, serving = root / "out", root / "serving"
    # `-o`: the suite runs in the installed .venv (make test installed it first), which a
    # changed setup.py must not make `make run` reinstall in the middle of the suite.
    result = subprocess.run(["make", "-o", ".venv/bin/recsys", "run",
                             f"ARGS=--output-dir {out} --serving-dir {serving}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=1800)
    return SimpleNamespace(result=result, out=str(out), serving=str(serving))


@pytest.fixture(scope="session")
def shared_run(tiny_data, tmp_path_factory):
    """The suite's one full pipeline run, read by every test that only reads a run's outputs
    (tests/e2e/test_e2e.py, the quality benchmark's main table, the report, the analysis notebook).

    The pipeline is given the first 80% of each user's timeline of ``tiny_data`` (the quality
    benchmark's outer split); the later interactions judge the pushed model. Tests that run
    the pipeline again fork it (tests/support.py: fork) and leave these folders as they are.
    """
    from bench import quality
    from models.data import readers
    from pipeline.config import DataConfig, EvalConfig, PipelineConfig, RankingConfig, RetrievalConfig
    from tests.support import EVAL_REQUESTS, IN_PROCESS, SHARED_RUN_SEED, SharedRun, run_pipeline

    root = tmp_path_factory.mktemp("shared-run")
    given_dir = str(root / "given")
    dataset = readers.read_dataset(tiny_data)
    given, future = quality.outer_split(dataset, given_dir)
    config = PipelineConfig(
        serving_dir=str(root / "serving"),
        top_k=10,
        data=DataConfig(data_dir=given_dir),
        # A twentieth of the default data: fewer steps per epoch, so a larger step size.
        retrieval=RetrievalConfig(learning_rate=0.005, seed=SHARED_RUN_SEED),
        ranking=RankingConfig(epochs=2),
        # The stock Evaluator on EVAL_REQUESTS of the 300 eval users (tests/support.py).
        evaluation=EvalConfig(requests=EVAL_REQUESTS),
        # Forks rerun only what their change reaches; the rest comes from this run's cache.
        enable_cache=True,
        beam_args=IN_PROCESS,
    )
    out = str(root / "out")
    summary = run_pipeline(config, out)
    return SharedRun(config=config, summary=summary, out=out, dataset=dataset, given=given,
                     future=future)
