--
-- PostgreSQL database dump
--

\restrict RpMdWrFcF2XJcC5zuQZBkMAnqrYoLBsA2epCwYyFLwdiTU1LhPoLYDwyg07BSma

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: c; Type: TYPE; Schema: public; Owner: postgres
--

CREATE TYPE public.c AS (
	a integer,
	b text
);


ALTER TYPE public.c OWNER TO postgres;

--
-- Name: e; Type: TYPE; Schema: public; Owner: postgres
--

CREATE TYPE public.e AS ENUM (
    'x',
    'y'
);


ALTER TYPE public.e OWNER TO postgres;

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f() RETURNS integer
    LANGUAGE sql
    AS $$select count(*)::int from public.t$$;


ALTER FUNCTION public.f() OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: ct; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.ct (
    x public.c,
    y public.e
);


ALTER TABLE public.ct OWNER TO postgres;

--
-- Name: p; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.p (
    a integer
)
PARTITION BY RANGE (a);


ALTER TABLE public.p OWNER TO postgres;

--
-- Name: t; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.t (
    id integer NOT NULL,
    d text DEFAULT 'a
b'::text,
    "q'" integer,
    CONSTRAINT t_id_check CHECK ((id > 0))
);


ALTER TABLE public.t OWNER TO postgres;

--
-- Name: u; Type: TABLE; Schema: public; Owner: postgres
--

CREATE UNLOGGED TABLE public.u (
    a integer
);


ALTER TABLE public.u OWNER TO postgres;

--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_pkey PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict RpMdWrFcF2XJcC5zuQZBkMAnqrYoLBsA2epCwYyFLwdiTU1LhPoLYDwyg07BSma

