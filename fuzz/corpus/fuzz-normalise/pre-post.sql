--
-- PostgreSQL database dump
--

\restrict dGylSqLUiZTfgii7xx19nMU8DCxsdZnBKYdRmUBjAKw2gUGtbqyPPGleb4ax4RV

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
-- Name: app; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA app;


--
-- Name: mood; Type: TYPE; Schema: app; Owner: -
--

CREATE TYPE app.mood AS ENUM (
    'sad',
    'ok',
    'happy'
);


--
-- Name: posint; Type: DOMAIN; Schema: app; Owner: -
--

CREATE DOMAIN app.posint AS integer
	CONSTRAINT posint_check CHECK ((VALUE > 0));


--
-- Name: f(integer); Type: FUNCTION; Schema: app; Owner: -
--

CREATE FUNCTION app.f(a integer) RETURNS integer
    LANGUAGE sql
    AS $$select a+1$$;


--
-- Name: f(text); Type: FUNCTION; Schema: app; Owner: -
--

CREATE FUNCTION app.f(a text) RETURNS text
    LANGUAGE sql
    AS $$select a$$;


--
-- Name: trg(); Type: FUNCTION; Schema: app; Owner: -
--

CREATE FUNCTION app.trg() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN

  NEW.body := lower(NEW.body);


  RETURN NEW;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: users; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app.users (
    id integer NOT NULL,
    name text NOT NULL,
    mood app.mood,
    age app.posint,
    CONSTRAINT c CHECK ((id > 0))
);


--
-- Name: TABLE users; Type: COMMENT; Schema: app; Owner: -
--

COMMENT ON TABLE app.users IS 'the users';


--
-- Name: COLUMN users.name; Type: COMMENT; Schema: app; Owner: -
--

COMMENT ON COLUMN app.users.name IS 'full name';


--
-- Name: zview; Type: VIEW; Schema: app; Owner: -
--

CREATE VIEW app.zview AS
 SELECT users.id
   FROM app.users;


--
-- Name: aview; Type: VIEW; Schema: app; Owner: -
--

CREATE VIEW app.aview AS
 SELECT zview.id
   FROM app.zview;


--
-- Name: posts; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app.posts (
    id bigint NOT NULL,
    user_id integer,
    body text,
    created timestamp with time zone DEFAULT now(),
    CONSTRAINT c CHECK ((id > 0))
);


--
-- Name: mv; Type: MATERIALIZED VIEW; Schema: app; Owner: -
--

CREATE MATERIALIZED VIEW app.mv AS
 SELECT count(*) AS count
   FROM app.posts
  WITH NO DATA;


--
-- Name: parts; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app.parts (
    k integer,
    v text
)
PARTITION BY RANGE (k);


--
-- Name: parts1; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app.parts1 (
    k integer,
    v text
);


--
-- Name: parts2; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app.parts2 (
    k integer,
    v text
);


--
-- Name: posts_id_seq; Type: SEQUENCE; Schema: app; Owner: -
--

CREATE SEQUENCE app.posts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: posts_id_seq; Type: SEQUENCE OWNED BY; Schema: app; Owner: -
--

ALTER SEQUENCE app.posts_id_seq OWNED BY app.posts.id;


--
-- Name: s1; Type: SEQUENCE; Schema: app; Owner: -
--

CREATE SEQUENCE app.s1
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: s2; Type: SEQUENCE; Schema: app; Owner: -
--

CREATE SEQUENCE app.s2
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: users_id_seq; Type: SEQUENCE; Schema: app; Owner: -
--

CREATE SEQUENCE app.users_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: users_id_seq; Type: SEQUENCE OWNED BY; Schema: app; Owner: -
--

ALTER SEQUENCE app.users_id_seq OWNED BY app.users.id;


--
-- Name: parts1; Type: TABLE ATTACH; Schema: app; Owner: -
--

ALTER TABLE ONLY app.parts ATTACH PARTITION app.parts1 FOR VALUES FROM (0) TO (10);


--
-- Name: parts2; Type: TABLE ATTACH; Schema: app; Owner: -
--

ALTER TABLE ONLY app.parts ATTACH PARTITION app.parts2 FOR VALUES FROM (10) TO (20);


--
-- Name: posts id; Type: DEFAULT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.posts ALTER COLUMN id SET DEFAULT nextval('app.posts_id_seq'::regclass);


--
-- Name: users id; Type: DEFAULT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.users ALTER COLUMN id SET DEFAULT nextval('app.users_id_seq'::regclass);


--
-- PostgreSQL database dump complete
--

\unrestrict dGylSqLUiZTfgii7xx19nMU8DCxsdZnBKYdRmUBjAKw2gUGtbqyPPGleb4ax4RV

--
-- PostgreSQL database dump
--

\restrict cb4d95GKABGXwbhM4dPtYgMgzmXTY4mrmmfvpN18RaXhvl1Bdl6PBZ44YsD1Lir

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

SET default_tablespace = '';

--
-- Name: posts posts_pkey; Type: CONSTRAINT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.posts
    ADD CONSTRAINT posts_pkey PRIMARY KEY (id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: posts_user_idx; Type: INDEX; Schema: app; Owner: -
--

CREATE INDEX posts_user_idx ON app.posts USING btree (user_id);


--
-- Name: zview r; Type: RULE; Schema: app; Owner: -
--

CREATE RULE r AS
    ON UPDATE TO app.zview DO INSTEAD NOTHING;


--
-- Name: posts t; Type: TRIGGER; Schema: app; Owner: -
--

CREATE TRIGGER t BEFORE INSERT ON app.posts FOR EACH ROW EXECUTE FUNCTION app.trg();


--
-- Name: users t; Type: TRIGGER; Schema: app; Owner: -
--

CREATE TRIGGER t BEFORE INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.trg();


--
-- Name: posts posts_user_id_fkey; Type: FK CONSTRAINT; Schema: app; Owner: -
--

ALTER TABLE ONLY app.posts
    ADD CONSTRAINT posts_user_id_fkey FOREIGN KEY (user_id) REFERENCES app.users(id);


--
-- Name: posts p; Type: POLICY; Schema: app; Owner: -
--

CREATE POLICY p ON app.posts USING (true);


--
-- Name: users p; Type: POLICY; Schema: app; Owner: -
--

CREATE POLICY p ON app.users USING (true);


--
-- Name: users; Type: ROW SECURITY; Schema: app; Owner: -
--

ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;

--
-- Name: mv; Type: MATERIALIZED VIEW DATA; Schema: app; Owner: -
--

REFRESH MATERIALIZED VIEW app.mv;


--
-- PostgreSQL database dump complete
--

\unrestrict cb4d95GKABGXwbhM4dPtYgMgzmXTY4mrmmfvpN18RaXhvl1Bdl6PBZ44YsD1Lir

