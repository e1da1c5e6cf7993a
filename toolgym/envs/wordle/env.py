"""Wordle: find a secret five-letter word from the letter feedback of each guess."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from toolgym.envs.errors import check_argument_types
from toolgym.envs.formats import ToolCall
from toolgym.envs.result import EpisodeResult
from toolgym.envs.tool import Tool, ToolResult, string_arguments
from toolgym.envs.tool_env import RewardTerms, ToolEnv
from toolgym.envs.wordle.game import ABSENT, CORRECT, PRESENT, WORD_LENGTH, WordleGame, load_words

LEGEND = f"{CORRECT} = right letter, right spot; {PRESENT} = in the word, wrong spot; {ABSENT} = not in the word"


class GuessTool(Tool):
    """One guess in the current game (the env starts a new ``WordleGame`` each episode)."""

    name = "guess"
    description = "Guess the secret five-letter word. Returns the letter feedback."
    parameters = string_arguments(word="A five-letter English word, e.g. crane.")
    timeout = None  # a dictionary look-up and five comparisons
    concurrency = "inline"  # not pure: each guess plays the game

    def __init__(self, allowed: frozenset[str]):
        self.allowed = allowed
        self.game: WordleGame | None = None

    def run(self, word: str) -> ToolResult:
        guess = word.strip().lower()
        if len(guess) != WORD_LENGTH or not guess.isalpha():
            return ToolResult.failure(
                f"guess: {word!r:.40} is not a {WORD_LENGTH}-letter word; guess one word of {WORD_LENGTH} letters",
                invalid_word=True,
            )
        if guess not in self.allowed:
            return ToolResult.failure(f"guess: {guess!r} is not in the word list; try another word", invalid_word=True)
        outcome = self.game.play(guess)
        return ToolResult(f"{guess}  {outcome['pattern']}\n{self.game.summary()}", metadata=outcome)


class WordleEnv(ToolEnv):
    """Find the secret five-letter word in at most six guesses, from the feedback of each guess.

    ## Description
    The classic word game as a tool-use task. Each episode draws a secret word from the 2,500
    most frequent words of the bundled list. Every guess must be a word of the list (4,428 words,
    bundled, no download); its feedback marks each letter ``G`` (right spot), ``Y`` (in the word,
    elsewhere) or ``-`` (not in the word), with repeated letters handled as in the game. The
    observation after a guess also summarises what is known. Every action changes the state: each
    message is one guess (``max_calls_per_turn=1``), and the agent must use the feedback over turns.

    ## Action Space
    Any string: the assistant's message. ``hermes``:
    ``<tool_call>{"name": "guess", "arguments": {"word": "crane"}}</tool_call>``; ``tags``:
    ``<guess>crane</guess>``.

    ## Observation Space
    ``Messages``: the system prompt, the task, then the guesses and their feedback.

    ## Rewards
    Dense: each guess is rewarded for what it reveals for the first time. The step reward is the
    weighted sum of named terms, reported in ``info["reward_terms"]``:

    | term               | raw value                                          | default weight |
    |--------------------|----------------------------------------------------|----------------|
    | ``win``            | 1 when the secret is guessed                        | 1.0            |
    | ``green``          | positions fixed (``G``) for the first time          | 0.1            |
    | ``letter``         | letters of the secret found (``G`` or ``Y``) for the first time | 0.05 |
    | ``invalid_word``   | guesses that are not a listed five-letter word      | -0.05          |
    | ``repeat_guess``   | guesses repeating an earlier guess                  | -0.05          |
    | ``valid_call``     | tool calls that ran                                 | 0.0            |
    | ``format``         | malformed calls, unknown tools, bad arguments       | -0.1           |

    The maximum return, ``1 + 0.5 + 0.05 * (distinct letters of the secret)``, is reached by
    guessing the secret at once (each green and letter counts once, however it is found).

    ## Episode End
    ``terminated`` when the secret is guessed or ``max_guesses`` valid guesses were used
    (``info["result"]["success"]`` says which). ``truncated`` when ``max_turns`` messages were written
    (invalid guesses use turns but not guesses) or the context outgrew ``max_context_chars``.
    The last step's ``info["result"]``: success when the word was found, score 1.0 then, the
    last valid guess as the answer and the secret as the gold.

    ## Arguments
    ``max_guesses``: valid guesses allowed (6). ``words``: the secret words to draw from
    (default: the bundled 2,500 answers); each must be a listed word. Reset option
    ``{"secret": "crane"}`` fixes the secret. Budgets and context options: see ``ToolEnv``
    (``max_turns`` defaults to 10 here, ``max_calls_per_turn`` to 1).

    ## Version History
    * v0: initial version.

    >>> import gymnasium as gym, toolgym
    >>> env = gym.make("Wordle-v0", format="tags")
    >>> obs, info = env.reset(seed=0, options={"secret": "react"})
    >>> obs, reward, terminated, truncated, info = env.step("<guess>crane</guess>")
    >>> print(obs[-1]["content"])
    <information>crane  YYG-Y
    Known: _ _ a _ _; in the word: a c e r; not in the word: n. 5 guesses left.</information>
    >>> info["reward_terms"], round(reward, 2)
    ({'valid_call': 0.0, 'green': 0.1, 'letter': 0.2}, 0.3)
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
    >>> terminated, info["result"], info["guesses"]
    (True, {'success': True, 'score': 1.0, 'answer': 'react', 'gold': 'react', 'extras': {}}, 2)
    """

    default_reward_weights: ClassVar[dict[str, float]] = {
        **ToolEnv.default_reward_weights,
        "valid_call": 0.0,  # every guess is a call: the feedback terms already reward it
        "win": 1.0,
        "green": 0.1,
        "letter": 0.05,
        "invalid_word": -0.05,
        "repeat_guess": -0.05,
    }
    free_tools: ClassVar[tuple[str, ...]] = ()

    def __init__(self, max_guesses: int = 6, *, words: Sequence[str] | None = None, **budgets: Any):
        check_argument_types({**locals(), **budgets}, WordleEnv.__init__, ToolEnv.__init__)
        answers, self.allowed = load_words()
        if max_guesses < 1:
            raise ValueError(f"max_guesses must be >= 1, got {max_guesses!r}.")
        if words is not None:
            words = tuple(w.strip().lower() for w in words)
            unknown = [w for w in words if w not in self.allowed]
            if unknown or not words:
                raise ValueError(
                    f"words= must be a non-empty list of listed {WORD_LENGTH}-letter words; "
                    f"not in the list: {unknown[:5]}"
                )
        self.answers = words or answers
        self.max_guesses = max_guesses
        budgets.setdefault("max_turns", 10)
        budgets.setdefault("max_calls_per_turn", 1)
        self.game: WordleGame | None = None
        self.puzzle: int | None = None
        super().__init__(**budgets)

    # -- the task -----------------------------------------------------------------------------
    def _make_tools(self) -> Sequence[Tool]:
        self.guess_tool = GuessTool(self.allowed)
        return (self.guess_tool,)

    def _instructions(self) -> str:
        return (
            f"You play Wordle: find the secret {WORD_LENGTH}-letter English word in at most "
            f"{self.max_guesses} guesses. Guess one word per message with the guess tool. After each "
            f"guess every letter gets a mark: {LEGEND}. Use the marks to narrow down the word."
        )

    def _new_task(self, options: Mapping[str, Any]) -> str:
        if "secret" in options:
            secret = str(options["secret"]).lower()
            if secret not in self.allowed:
                raise ValueError(f"options['secret']={options['secret']!r} is not a listed {WORD_LENGTH}-letter word.")
        else:
            secret = self.answers[int(self.np_random.integers(len(self.answers)))]
        self.game = self.guess_tool.game = WordleGame(secret, self.max_guesses)
        # A puzzle number, as the newspaper game shows: drawn independently of the secret, so it
        # tells nothing about the word, but it tells episodes apart.
        self.puzzle = int(self.np_random.integers(1, 100_000))
        return f"Wordle #{self.puzzle}: guess the secret {WORD_LENGTH}-letter word. You have {self.max_guesses} guesses."

    def _on_result(self, call: ToolCall, result: ToolResult, terms: RewardTerms) -> bool:
        if not result.ok:
            if result.metadata.get("invalid_word"):
                terms.add("invalid_word")
            return False
        outcome = result.metadata
        if outcome["new_greens"]:
            terms.add("green", outcome["new_greens"])
        if outcome["new_letters"]:
            terms.add("letter", outcome["new_letters"])
        if outcome["repeat"]:
            terms.add("repeat_guess")
        if outcome["won"]:
            terms.add("win")
        return outcome["over"]

    def oracle_action(self) -> str:
        """Guess the secret: the maximum return, in one guess."""
        return self.call("guess", word=self.game.secret)

    def _task_info(self) -> dict[str, Any]:
        history = self.game.history if self.game is not None else []
        return {"puzzle": self.puzzle, "guesses": len(history), "history": [list(h) for h in history]}

    def _episode_result(self) -> EpisodeResult:
        history = self.game.history
        return EpisodeResult(success=self.game.won, score=float(self.game.won),
                             answer=history[-1][0] if history else None, gold=self.game.secret)
