#!/usr/bin/env python3
"""cinema-sql: a toy question-to-SQL "model" for the inference worker's `command` adapter.

Speaks the adapter's protocol, JSON lines over stdin/stdout (UTF-8, one object per line):

  started      -> {"ready": true, "model": "cinema-sql"}        (once, after loading)
  {"id": I, "input": {"question": "how many films?"}}
               -> {"id": I, "output": {"sql": "...", "explanation": "..."}}
               or {"id": I, "error": "<why this input is unusable>"}

The question may also come as "nature", with the schema it is about as "database", which is how
a backend's own message reads: {"uuid": "...", "nature": "Can you tell me how much this is?",
"database": "cinema"} (the worker passes everything but the uuid as the input). This model knows
the "cinema" database only; another gets an error naming it.

One answer per request line, in order; answers are flushed whenever every request read so far
has been answered, so a micro-batch written in one go is answered in one go. Blank lines are
ignored. A line that is not a JSON object with an "id" is answered with "id": null and an error
(the adapter treats that as a broken model). Stdin closing ends the program (status 0).

Settings and failure injection, for tests:
  CINEMA_LOAD_MS (env, default 500)   simulated loading time before the ready line
  {"sleep_ms": N, ...}                sleep N ms (at most 10000) before answering
  {"crash": true}                     exit at once with status 3, leaving this request (and the
                                      rest of its batch) unanswered, as a crashing model would

Schema it translates for:
  films(id, title, year, genre, director)
  screenings(id, film_id, room, starts_at)
  tickets(id, screening_id, seat, price)

Standard library only; Python 3.9+. Logs go to stderr only: stdout carries the protocol.
"""

import json
import os
import re
import sys
import time

MODEL_NAME = "cinema-sql"
DATABASE = "cinema"
MAX_SLEEP_MS = 10_000
CRASH_STATUS = 3
GENRES = (
    "action", "adventure", "animation", "comedy", "crime", "documentary", "drama", "fantasy",
    "horror", "musical", "mystery", "romance", "sci-fi", "thriller", "war", "western",
)
# Plurals people write, mapped to the stored genre.
GENRE_WORDS = {g: g for g in GENRES}
GENRE_WORDS.update({"comedies": "comedy", "dramas": "drama", "thrillers": "thriller",
                    "westerns": "western", "musicals": "musical", "documentaries": "documentary",
                    "romances": "romance", "mysteries": "mystery", "animated": "animation"})
FILM_WORDS = r"(?:films?|movies?)"


def log(message):
    print(f"cinema-model: {message}", file=sys.stderr, flush=True)


class Untranslatable(Exception):
    pass


# ------------------------------------------------------------------------------ the "model"


def sql_text(value):
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def clean(question):
    return re.sub(r"\s+", " ", question).strip().rstrip("?.! ").strip()


def extract_title(text):
    """A film title: quoted if the question quotes it, else the rest of the sentence."""
    quoted = re.search(r"(?:^|\s)[\"“'‘](.+?)[\"”'’](?:\s|$)", text)
    title = quoted.group(1) if quoted else text
    title = re.sub(r"^(?:the (?:film|movie) )", "", title.strip(), flags=re.I).strip()
    if not title:
        raise Untranslatable("no film title in the question")
    return title


def film_filters(q):
    """WHERE conditions on films (alias f) and their description, from a question."""
    conditions, words = [], []
    director = re.search(r"\bdirected by (.+?)(?=\s+(?:in|from|before|after|released|and)\b|$)", q, re.I)
    if director:
        name = director.group(1).strip()
        conditions.append(f"lower(f.director) = lower({sql_text(name)})")
        words.append(f"directed by {name}")
    between = re.search(r"\bbetween (\d{4}) and (\d{4})\b", q, re.I)
    after = re.search(r"\b(?:after|since) (\d{4})\b", q, re.I)
    before = re.search(r"\bbefore (\d{4})\b", q, re.I)
    year = re.search(r"\b(?:in|from|of) (\d{4})\b", q, re.I)
    if between:
        conditions.append(f"f.year BETWEEN {between.group(1)} AND {between.group(2)}")
        words.append(f"released between {between.group(1)} and {between.group(2)}")
    else:
        if after:
            conditions.append(f"f.year > {after.group(1)}")
            words.append(f"released after {after.group(1)}")
        if before:
            conditions.append(f"f.year < {before.group(1)}")
            words.append(f"released before {before.group(1)}")
        if year and not (after or before):
            conditions.append(f"f.year = {year.group(1)}")
            words.append(f"released in {year.group(1)}")
    genre = re.search(r"\bgenres? (?:is |of )?([a-z-]+)", q, re.I)
    genre_word = genre.group(1).lower() if genre else None
    if genre_word not in GENRE_WORDS:
        genre_word = next((w for w in re.findall(r"[a-z-]+", q.lower()) if w in GENRE_WORDS), None)
    if genre_word:
        conditions.append(f"f.genre = {sql_text(GENRE_WORDS[genre_word])}")
        words.append(f"of genre {GENRE_WORDS[genre_word]}")
    return conditions, words


def where(conditions):
    return (" WHERE " + " AND ".join(conditions)) if conditions else ""


def translate(question):
    """{"sql", "explanation"} for a question about the cinema schema, or Untranslatable."""
    q = clean(question)
    if not q:
        raise Untranslatable("the question is empty")
    low = q.lower()

    # What is showing in room N.
    room = re.search(r"\b(?:showing|playing|on|screened|scheduled)\b.*\b(?:in|at) (?:room|screen|hall) (\w+)", q, re.I)
    if room:
        r = room.group(1)
        literal = r if r.isdigit() else sql_text(r)
        return {
            "sql": "SELECT f.title, s.starts_at FROM screenings s JOIN films f ON f.id = s.film_id"
                   f" WHERE s.room = {literal} ORDER BY s.starts_at",
            "explanation": f"Lists the films screened in room {r}, with their start times, earliest first.",
        }

    # "How much is this?" with nothing else to go on: what a ticket costs.
    if re.search(r"\bhow much\b", low) and not re.search(rf"\b(?:tickets?|{FILM_WORDS})\b", low):
        return {
            "sql": "SELECT avg(price) FROM tickets",
            "explanation": "What a ticket costs: the average price paid for one.",
        }

    # Ticket prices, overall or for one film.
    if "ticket" in low and re.search(r"\b(?:prices?|cost)\b", low):
        word = re.search(r"\b(average|mean|minimum|cheapest|lowest|maximum|most expensive|highest|total)\b", low)
        agg, label = {
            "average": ("avg", "average"), "mean": ("avg", "average"),
            "minimum": ("min", "lowest"), "cheapest": ("min", "lowest"), "lowest": ("min", "lowest"),
            "maximum": ("max", "highest"), "most expensive": ("max", "highest"),
            "highest": ("max", "highest"), "total": ("sum", "total"),
        }[word.group(1) if word else "average"]
        film = re.search(r"\b(?:prices?|cost) (?:for|of|at) (.+)$", q, re.I)
        if film and not re.fullmatch(r"(?:a |one |the |all )?tickets?", film.group(1), re.I):
            title = extract_title(film.group(1))
            return {
                "sql": f"SELECT {agg}(t.price) FROM tickets t JOIN screenings s ON s.id = t.screening_id"
                       f" JOIN films f ON f.id = s.film_id WHERE lower(f.title) = lower({sql_text(title)})",
                "explanation": f"The {label} price of the tickets sold for {title}.",
            }
        return {"sql": f"SELECT {agg}(price) FROM tickets", "explanation": f"The {label} price over all tickets."}
    if re.search(r"\b(?:total )?(?:revenue|takings|box office)\b", low):
        return {"sql": "SELECT sum(price) FROM tickets", "explanation": "The total paid for all tickets."}
    tickets = re.search(r"\bhow many tickets\b(?:.*?\b(?:for|of) (.+))?$", q, re.I)
    if tickets:
        if tickets.group(1):
            title = extract_title(tickets.group(1))
            return {
                "sql": "SELECT count(*) FROM tickets t JOIN screenings s ON s.id = t.screening_id"
                       f" JOIN films f ON f.id = s.film_id WHERE lower(f.title) = lower({sql_text(title)})",
                "explanation": f"Counts the tickets sold for {title}.",
            }
        return {"sql": "SELECT count(*) FROM tickets", "explanation": "Counts all tickets sold."}

    # Screenings of a film.
    screenings = re.search(r"\b(?:screenings|showtimes|show times) (?:of|for) (.+)$", q, re.I) or re.search(
        r"^when (?:is|does) (.+?) (?:showing|playing|screened|on)$", q, re.I)
    if screenings:
        title = extract_title(screenings.group(1))
        return {
            "sql": "SELECT s.room, s.starts_at FROM screenings s JOIN films f ON f.id = s.film_id"
                   f" WHERE lower(f.title) = lower({sql_text(title)}) ORDER BY s.starts_at",
            "explanation": f"Lists the screenings of {title} (room and start time), earliest first.",
        }

    # Films: a count or a list, with any of director / year / genre filters.
    mentions_films = re.search(rf"\b{FILM_WORDS}\b", low) or any(w in GENRE_WORDS for w in re.findall(r"[a-z-]+", low))
    if mentions_films:
        conditions, words = film_filters(q)
        described = "the films" + ("" if not words else " " + " and ".join(words))
        if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b", low):
            return {"sql": f"SELECT count(*) FROM films f{where(conditions)}",
                    "explanation": f"Counts {described}."}
        if conditions or re.search(r"^(?:list|show|which|what|give|all)\b", low):
            return {
                "sql": f"SELECT f.id, f.title, f.year, f.genre, f.director FROM films f{where(conditions)}"
                       " ORDER BY f.year, f.title",
                "explanation": f"Lists {described}, oldest first.",
            }
    raise Untranslatable(question)


# ------------------------------------------------------------------------------ the protocol


def answer(request_id, input_value):
    """The answer object for one request; exits the process on {"crash": true}."""
    if not isinstance(input_value, dict):
        return {"id": request_id, "error": 'input must be an object like {"question": "..."}'}
    if input_value.get("crash") is True:
        return None
    if "sleep_ms" in input_value:
        ms = input_value["sleep_ms"]
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
            return {"id": request_id, "error": "sleep_ms must be a non-negative number"}
        time.sleep(min(ms, MAX_SLEEP_MS) / 1000)
    database = input_value.get("database", DATABASE)
    if database != DATABASE:
        return {"id": request_id, "error": f"this model knows the {DATABASE!r} database, not {database!r}"}
    question = input_value.get("question", input_value.get("nature"))
    if not isinstance(question, str):
        return {"id": request_id, "error": 'input needs a string "question" (or "nature")'}
    try:
        return {"id": request_id, "output": translate(question)}
    except Untranslatable as e:
        return {"id": request_id, "error": f"cannot translate: {e}"}


def handle(line):
    """The answer to one request line, or None to crash."""
    try:
        request = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return {"id": None, "error": f"not a JSON line: {e}"}
    if not isinstance(request, dict) or "id" not in request:
        return {"id": None, "error": 'a request is {"id": ..., "input": ...}'}
    if "input" not in request:
        return {"id": request["id"], "error": 'the request has no "input"'}
    return answer(request["id"], request["input"])


def write(out, lines):
    if lines:
        out.write(b"".join(lines))
        out.flush()
        lines.clear()


def serve(fd_in, out):
    pending = b""
    answers = []
    while True:
        chunk = os.read(fd_in, 1 << 16)
        if not chunk:
            if pending.strip():
                log("stdin ended in the middle of a line; ignoring it")
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            reply = handle(line)
            if reply is None:
                write(out, answers)  # what was answered before the crash still goes out
                log(f"crash requested: exiting with status {CRASH_STATUS}")
                os._exit(CRASH_STATUS)
            answers.append(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")
        # Everything read so far is answered: send it before blocking on the next read.
        write(out, answers)


def main():
    try:
        load_ms = int(os.environ.get("CINEMA_LOAD_MS", "500"))
        if load_ms < 0:
            raise ValueError
    except ValueError:
        log("CINEMA_LOAD_MS must be a non-negative integer (milliseconds)")
        return 2
    log(f"loading (CINEMA_LOAD_MS={load_ms})")
    time.sleep(load_ms / 1000)
    out = sys.stdout.buffer
    try:
        out.write(json.dumps({"ready": True, "model": MODEL_NAME}).encode("utf-8") + b"\n")
        out.flush()
        log("ready")
        serve(sys.stdin.fileno(), out)
    except BrokenPipeError:
        log("stdout closed by the reader; exiting")
        os._exit(0)  # skip the interpreter's final flush, which would fail again
    except KeyboardInterrupt:
        return 130
    log("stdin closed; exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
