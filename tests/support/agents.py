"""Agents for tests, built through the same validation as the agents file."""

from __future__ import annotations

from typing import Any

from config.agents import Agent, AgentsFile, parse_agents

CHEF_SHAPE = {
    "answer": "String, your reply to the person",
    "recipes": "List of strings with the names of the recipes",
    "ingredients": "List of strings with the ingredients",
    "summary": "String, summary of the conversation",
}


def chef(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "chef",
        "name": "Chef",
        "context": "You are a Mediterranean chef.",
        "first_message": "Hello, I am your personal chef. What can I do for you today?",
        "instructions": "Ask about allergies before suggesting recipes.",
        "response_shape": CHEF_SHAPE,
        "goal": "The person chose a recipe.",
        **overrides,
    }


def plain(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "plain",
        "name": "Plain",
        "context": "You are a helpful assistant.",
        "first_message": "Hi! How can I help?",
        **overrides,
    }


def agents_file(*agents: dict[str, Any], default: str | None = None) -> AgentsFile:
    document: dict[str, Any] = {"agents": list(agents or (chef(),))}
    if default is not None:
        document["default_agent"] = default
    return parse_agents(document, source="test-agents.yaml")


def agent(**overrides: Any) -> Agent:
    return agents_file(chef(**overrides)).default
